#!/usr/bin/env python3
"""librdkafka (confluent-kafka) scenarios against a Strom broker.

Usage: ck_scenarios.py SCENARIO BOOTSTRAP [ARGS...]

Each scenario produces, consumes and compares byte for byte in Python, then prints one JSON
object (counts, offsets and a list of mismatches) that the Rust test asserts on exactly.
Consumers use manual assignment (no consumer groups) and auto.offset.reset=error, so a
broker that answers a fetch with OFFSET_OUT_OF_RANGE fails loudly instead of being papered
over by a reset.
"""

import hashlib
import random
import sys
import time
import zlib

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from kutil import emit, fail, hexb, kafka_partition, now_ms, require

WAIT_S = 60  # upper bound of every wait in this script


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})


def create_topic(bootstrap, name, partitions, config=None):
    """CreateTopics through the admin client, then wait until Metadata shows the topic."""
    a = admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=30,
        request_timeout=30,
    )
    for t, f in fs.items():
        try:
            f.result(timeout=WAIT_S)
        except Exception as e:  # noqa: BLE001
            fail("create_topics(%s, partitions=%d, config=%r) failed: %s" % (t, partitions, config, e))
    deadline = time.time() + WAIT_S
    while True:
        md = a.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        if time.time() > deadline:
            fail("topic %s not in metadata with %d partitions after create: %r" % (name, partitions, t))
        time.sleep(0.1)


def producer(bootstrap, **conf):
    c = {"bootstrap.servers": bootstrap, "message.timeout.ms": 30000}
    c.update({k.replace("_", "."): v for k, v in conf.items()})
    return Producer(c)


def consumer(bootstrap, **conf):
    c = {
        "bootstrap.servers": bootstrap,
        "group.id": "strom-tests-manual-assignment",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": False,
    }
    c.update({k.replace("_", "."): v for k, v in conf.items()})
    return Consumer(c)


def produce(p, **kw):
    """produce(), waiting for queue space instead of failing with BufferError."""
    deadline = time.time() + WAIT_S
    while True:
        try:
            p.produce(**kw)
            return
        except BufferError:
            if time.time() > deadline:
                fail("producer queue stayed full for %ds" % WAIT_S)
            p.poll(0.05)


def flush(p):
    left = p.flush(WAIT_S)
    require(left == 0, "%d messages still undelivered after flush(%ds)" % (left, WAIT_S))


class Reports:
    """Delivery reports keyed by the index the test gave each record."""

    def __init__(self):
        self.by_index = {}

    def cb(self, index):
        def on_delivery(err, msg):
            self.by_index[index] = {
                "err": None if err is None else err.code(),
                "err_name": None if err is None else err.name(),
                "partition": msg.partition(),
                "offset": msg.offset(),
                "timestamp": msg.timestamp(),
            }

        return on_delivery

    def require_all_ok(self, n):
        require(len(self.by_index) == n, "got %d delivery reports, expected %d" % (len(self.by_index), n))
        bad = [(i, r) for i, r in self.by_index.items() if r["err"] is not None]
        require(not bad, "%d deliveries failed, first: %r" % (len(bad), bad[:5]))


def rec(m):
    return {
        "p": m.partition(),
        "o": m.offset(),
        "k": m.key(),
        "v": m.value(),
        "h": list(m.headers() or []),
        "ts": m.timestamp(),
    }


def consume(bootstrap, assignments, expect, linger_s=0.5, **conf):
    """Assign [(topic, partition, offset)], read until `expect` records arrived (then linger
    a little to catch extras). Fails on any consumer error or on timeout."""
    c = consumer(bootstrap, **conf)
    c.assign([TopicPartition(t, p, o) for (t, p, o) in assignments])
    out = []
    deadline = time.time() + WAIT_S
    extra_until = None
    while True:
        msgs = c.consume(num_messages=1000, timeout=0.2)
        for m in msgs:
            if m.error() is not None:
                fail("consumer error: %s" % m.error())
            out.append(rec(m))
        if len(out) >= expect and extra_until is None:
            extra_until = time.time() + linger_s
        if extra_until is not None and time.time() >= extra_until:
            break
        if time.time() > deadline:
            fail("consumed %d of %d records within %ds" % (len(out), expect, WAIT_S))
    c.close()
    return out


def norm_headers(h):
    return [(k, None if v is None else bytes(v)) for (k, v) in (h or [])]


def compare(expected, got):
    """expected/got: dicts with p, o, k, v, h, ts. Returns a list of readable mismatches."""
    diffs = []
    for field in ("p", "o", "k", "v", "ts"):
        if expected[field] != got[field]:
            diffs.append(
                {
                    "field": field,
                    "at": [expected["p"], expected["o"]],
                    "expected": repr(expected[field])[:200],
                    "got": repr(got[field])[:200],
                }
            )
    if norm_headers(expected["h"]) != norm_headers(got["h"]):
        diffs.append(
            {
                "field": "headers",
                "at": [expected["p"], expected["o"]],
                "expected": repr(norm_headers(expected["h"]))[:300],
                "got": repr(norm_headers(got["h"]))[:300],
            }
        )
    return diffs


def check_roundtrip(expected_list, consumed):
    """Every expected record consumed once at its (partition, offset) with equal fields;
    nothing else consumed; each partition's offsets contiguous from 0."""
    mismatches = []
    by_pos = {}
    for r in consumed:
        pos = (r["p"], r["o"])
        if pos in by_pos:
            mismatches.append({"duplicate": list(pos)})
        by_pos[pos] = r
    for e in expected_list:
        got = by_pos.pop((e["p"], e["o"]), None)
        if got is None:
            mismatches.append({"missing": [e["p"], e["o"]]})
        else:
            mismatches.extend(compare(e, got))
    for pos in sorted(by_pos):
        mismatches.append({"unexpected": list(pos)})
    per_part = {}
    for r in consumed:
        per_part.setdefault(r["p"], []).append(r["o"])
    for p, offs in per_part.items():
        if offs != list(range(len(offs))):
            mismatches.append({"partition": p, "offsets_not_contiguous_from_0_in_order": offs[:20]})
    return mismatches


# ---------------------------------------------------------------------------------------------
# scenarios


def keyed(bootstrap):
    """Keyed records with headers and CreateTime timestamps, partitioned by librdkafka's
    Java-compatible murmur2; each must come back on the murmur2 partition, at the offset the
    delivery report gave, in produce order, byte for byte."""
    topic, parts, n = "keyed-roundtrip", 4, 400
    create_topic(bootstrap, topic, parts)
    rnd = random.Random(20240601)
    p = producer(bootstrap, partitioner="murmur2_random", linger_ms=20)
    reports = Reports()
    sent = []
    for i in range(n):
        if i % 5 == 0:
            key = rnd.randbytes(rnd.randint(1, 40))  # binary keys, any byte
        else:
            key = ("key-%d" % i).encode()
        value = rnd.randbytes(rnd.choice([0, 1, 17, 100, 1000, 5000]))
        kind = i % 4
        if kind == 0:
            headers = []
        elif kind == 1:
            headers = [("h1", b"one")]
        elif kind == 2:
            headers = [("trace", rnd.randbytes(16)), ("dup", b"a"), ("dup", b"b")]
        else:
            headers = [("empty", b""), ("nullv", None), ("utf8-\u043a\u043b\u044e\u0447", "\u0437\u043d\u0430\u0447".encode())]
        ts = 1_600_000_000_000 + rnd.randint(0, 10**9)
        sent.append({"k": key, "v": value, "h": headers, "ts": (TIMESTAMP_CREATE_TIME, ts)})
        produce(p, topic=topic, key=key, value=value, headers=headers or None, timestamp=ts, on_delivery=reports.cb(i))
        p.poll(0)
    flush(p)
    reports.require_all_ok(n)
    mismatches = []
    expected = []
    per_part_offsets = {}
    for i, s in enumerate(sent):
        r = reports.by_index[i]
        want_p = kafka_partition(s["k"], parts)
        if r["partition"] != want_p:
            mismatches.append({"record": i, "client_partition": r["partition"], "murmur2_partition": want_p})
        per_part_offsets.setdefault(r["partition"], []).append(r["offset"])
        expected.append(dict(s, p=want_p, o=r["offset"]))
    for part, offs in per_part_offsets.items():
        if offs != list(range(len(offs))):
            mismatches.append({"partition": part, "delivery_offsets_not_in_produce_order": offs[:20]})
    got = consume(bootstrap, [(topic, q, OFFSET_BEGINNING) for q in range(parts)], n)
    mismatches.extend(check_roundtrip(expected, got))
    emit(
        {
            "produced": n,
            "consumed": len(got),
            "partitions_used": sorted(per_part_offsets),
            "per_partition": {str(k): len(v) for k, v in sorted(per_part_offsets.items())},
            "mismatches": mismatches,
        }
    )


def codecs(bootstrap):
    """Every compression codec round-trips; fetching from the middle of a compressed batch
    starts at the requested offset."""
    result = {}
    n = 2000
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        topic = "codec-" + codec
        create_topic(bootstrap, topic, 1)
        rnd = random.Random(codec)
        p = producer(bootstrap, compression_type=codec, linger_ms=50, batch_num_messages=500)
        reports = Reports()
        sent = []
        for i in range(n):
            key = ("k%d" % i).encode()
            value = (("%s record %d " % (codec, i)) * rnd.randint(1, 20)).encode() + rnd.randbytes(rnd.randint(0, 32))
            headers = [("i", str(i).encode())]
            ts = 1_700_000_000_000 + i
            sent.append({"k": key, "v": value, "h": headers, "ts": (TIMESTAMP_CREATE_TIME, ts)})
            produce(p, topic=topic, partition=0, key=key, value=value, headers=headers, timestamp=ts, on_delivery=reports.cb(i))
            p.poll(0)
        flush(p)
        reports.require_all_ok(n)
        expected = [dict(s, p=0, o=reports.by_index[i]["offset"]) for i, s in enumerate(sent)]
        mismatches = []
        if [e["o"] for e in expected] != list(range(n)):
            mismatches.append({"delivery_offsets_not_0_to_n": [e["o"] for e in expected][:20]})
        got = consume(bootstrap, [(topic, 0, OFFSET_BEGINNING)], n)
        mismatches.extend(check_roundtrip(expected, got))
        # Start in the middle: the broker returns whole batches, the client skips to 1234.
        mid = consume(bootstrap, [(topic, 0, 1234)], n - 1234, linger_s=0.2)
        mid_offsets = [r["o"] for r in mid]
        if mid_offsets != list(range(1234, n)):
            mismatches.append({"from_1234_offsets": mid_offsets[:10], "count": len(mid_offsets)})
        for r in mid[:50]:
            mismatches.extend(compare(expected[r["o"]], r))
        result[codec] = {"produced": n, "consumed": len(got), "mismatches": mismatches}
    emit(result)


def nulls(bootstrap):
    """Null keys and null values (tombstones) come back as null, empty ones as empty."""
    topic = "nulls"
    create_topic(bootstrap, topic, 1)
    cases = [
        (None, b"value-with-null-key"),
        (b"tombstone-key", None),
        (None, None),
        (b"k", b""),
        (b"key-of-empty", b""),
        (b"plain-key", b"plain-value"),
    ]
    p = producer(bootstrap)
    reports = Reports()
    for i, (k, v) in enumerate(cases):
        produce(p, topic=topic, partition=0, key=k, value=v, on_delivery=reports.cb(i))
        flush(p)  # one batch per record
    reports.require_all_ok(len(cases))
    got = consume(bootstrap, [(topic, 0, OFFSET_BEGINNING)], len(cases))
    emit(
        {
            "delivered_offsets": [reports.by_index[i]["offset"] for i in range(len(cases))],
            "records": [{"o": r["o"], "k": hexb(r["k"]), "v": hexb(r["v"])} for r in got],
        }
    )


def large(bootstrap):
    """A 1,000,000-byte value round-trips (the broker's default message.max.bytes is
    1048588), and the next record lands at the next offset."""
    topic = "large"
    create_topic(bootstrap, topic, 1)
    big = random.Random(7).randbytes(1_000_000)
    p = producer(bootstrap, message_max_bytes=2_000_000)
    reports = Reports()
    produce(p, topic=topic, partition=0, key=b"big", value=big, on_delivery=reports.cb(0))
    flush(p)
    produce(p, topic=topic, partition=0, key=b"small", value=b"after-big", on_delivery=reports.cb(1))
    flush(p)
    reports.require_all_ok(2)
    got = consume(bootstrap, [(topic, 0, OFFSET_BEGINNING)], 2)
    emit(
        {
            "delivered_offsets": [reports.by_index[0]["offset"], reports.by_index[1]["offset"]],
            "offsets": [r["o"] for r in got],
            "keys": [r["k"].decode() for r in got],
            "sent_len": len(big),
            "sent_sha256": hashlib.sha256(big).hexdigest(),
            "got_len": [len(r["v"]) for r in got],
            "got_sha256": [hashlib.sha256(r["v"]).hexdigest() for r in got],
        }
    )


def oversized(bootstrap):
    """A record above the broker's message.max.bytes (client limit raised so the client
    sends it) fails with MESSAGE_TOO_LARGE (10); records before and after succeed at
    consecutive offsets. Same against a topic-level max.message.bytes."""

    def attempt(topic, big_len):
        p = producer(bootstrap, message_max_bytes=5_000_000, linger_ms=0, retries=0)
        reports = Reports()
        produce(p, topic=topic, partition=0, key=b"k", value=b"before", on_delivery=reports.cb(0))
        flush(p)
        try:
            p.produce(topic=topic, partition=0, key=b"k", value=b"x" * big_len, on_delivery=reports.cb(1))
        except KafkaException as e:
            fail("the client itself refused the big record (raise its limit): %s" % e)
        flush(p)
        produce(p, topic=topic, partition=0, key=b"k", value=b"after", on_delivery=reports.cb(2))
        flush(p)
        require(len(reports.by_index) == 3, "missing delivery reports: %r" % reports.by_index)
        got = consume(bootstrap, [(topic, 0, OFFSET_BEGINNING)], 2)
        return {
            "before": [reports.by_index[0]["err"], reports.by_index[0]["offset"]],
            "big_err": reports.by_index[1]["err"],
            "big_err_name": reports.by_index[1]["err_name"],
            "after": [reports.by_index[2]["err"], reports.by_index[2]["offset"]],
            "consumed": [[r["o"], r["v"].decode("latin-1")[:20], len(r["v"])] for r in got],
        }

    create_topic(bootstrap, "oversized", 1)
    broker_limit = attempt("oversized", 1_100_000)
    create_topic(bootstrap, "small-max", 1, {"max.message.bytes": "10000"})
    topic_limit = attempt("small-max", 20_000)
    emit(
        {
            "MSG_SIZE_TOO_LARGE": KafkaError.MSG_SIZE_TOO_LARGE,
            "broker_limit": broker_limit,
            "topic_limit": topic_limit,
        }
    )


def min_insync(bootstrap):
    """A topic with min.insync.replicas=2 on a broker with one replica: acks=all produce
    fails with NOT_ENOUGH_REPLICAS (19) and stores nothing; acks=1 and acks=0 still write.
    A topic left at the default (1) takes acks=all."""
    create_topic(bootstrap, "min-isr-2", 1, {"min.insync.replicas": "2"})
    create_topic(bootstrap, "min-isr-default", 1)
    out = {"NOT_ENOUGH_REPLICAS": KafkaError.NOT_ENOUGH_REPLICAS}
    for acks in ("all", "1", "0"):
        p = producer(bootstrap, acks=acks, retries=0, linger_ms=0, enable_idempotence=False)
        reports = Reports()
        produce(p, topic="min-isr-2", partition=0, key=b"k", value=("acks=" + acks).encode(), on_delivery=reports.cb(0))
        flush(p)
        out["acks_" + acks] = reports.by_index[0]["err"]
    p = producer(bootstrap, acks="all", linger_ms=0)
    reports = Reports()
    produce(p, topic="min-isr-default", partition=0, key=b"k", value=b"default", on_delivery=reports.cb(0))
    flush(p)
    out["default_topic_acks_all"] = [reports.by_index[0]["err"], reports.by_index[0]["offset"]]
    got = consume(bootstrap, [("min-isr-2", 0, OFFSET_BEGINNING)], 2)
    out["stored"] = [[r["o"], r["v"].decode()] for r in got]
    emit(out)


def bulk(bootstrap, count):
    """`count` records over 3 partitions round-trip: count, checksum (sum of crc32 of each
    value and sha256 over sorted values) and per-partition contiguous offsets equal."""
    count = int(count)
    topic, parts = "bulk", 3
    create_topic(bootstrap, topic, parts)
    rnd = random.Random(99)
    filler = rnd.randbytes(4096).hex().encode()
    p = producer(bootstrap, linger_ms=5, queue_buffering_max_messages=200000)
    state = {"ok": 0, "err": 0, "first_err": None}

    def on_delivery(err, msg):
        if err is None:
            state["ok"] += 1
        else:
            state["err"] += 1
            if state["first_err"] is None:
                state["first_err"] = str(err)

    crc_sum = 0
    values = []
    t0 = time.time()
    for i in range(count):
        v = b"%08d-" % i + filler[(i * 7) % 4000 : (i * 7) % 4000 + 40 + i % 120]
        values.append(v)
        crc_sum += zlib.crc32(v)
        produce(p, topic=topic, key=b"%d" % i, value=v, on_delivery=on_delivery)
        if i % 1000 == 0:
            p.poll(0)
    flush(p)
    t_produce = time.time() - t0
    require(state["err"] == 0, "%d deliveries failed, first: %s" % (state["err"], state["first_err"]))
    require(state["ok"] == count, "%d delivery reports ok, expected %d" % (state["ok"], count))
    values.sort()
    sha_sent = hashlib.sha256(b"\n".join(values)).hexdigest()
    del values

    c = consumer(bootstrap, fetch_wait_max_ms=100)
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(parts)])
    got_crc = 0
    got_values = []
    next_off = {q: 0 for q in range(parts)}
    offset_errors = []
    t0 = time.time()
    deadline = t0 + 120
    extra_until = None
    while True:
        for m in c.consume(num_messages=10000, timeout=0.2):
            if m.error() is not None:
                fail("consumer error: %s" % m.error())
            v = m.value()
            got_values.append(v)
            got_crc += zlib.crc32(v)
            q = m.partition()
            if m.offset() != next_off[q] and len(offset_errors) < 10:
                offset_errors.append({"partition": q, "expected": next_off[q], "got": m.offset()})
            next_off[q] = m.offset() + 1
        if len(got_values) >= count and extra_until is None:
            extra_until = time.time() + 1.0
        if extra_until is not None and time.time() >= extra_until:
            break
        if time.time() > deadline:
            fail("consumed %d of %d records within 120s" % (len(got_values), count))
    t_consume = time.time() - t0
    watermarks = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10) for q in range(parts)}
    c.close()
    got_count = len(got_values)
    got_values.sort()
    sha_got = hashlib.sha256(b"\n".join(got_values)).hexdigest()
    emit(
        {
            "produced": count,
            "consumed": got_count,
            "crc_sum_sent": crc_sum,
            "crc_sum_got": got_crc,
            "sha256_sent": sha_sent,
            "sha256_got": sha_got,
            "offset_errors": offset_errors,
            "per_partition_end": [next_off[q] for q in range(parts)],
            "watermarks": [list(watermarks[q]) for q in range(parts)],
            "produce_s": round(t_produce, 2),
            "consume_s": round(t_consume, 2),
        }
    )


def times(bootstrap):
    """ListOffsets by timestamp (offsets_for_times) returns the first offset whose timestamp
    is at or after the target, inside a batch and across batches; -1 past the end."""
    topic = "times"
    create_topic(bootstrap, topic, 1)
    t0 = 1_650_000_000_000
    p = producer(bootstrap, linger_ms=200)
    reports = Reports()
    # Offsets 0..9 in one batch (produced back to back within linger.ms), one second apart.
    for i in range(10):
        produce(p, topic=topic, partition=0, value=b"a%d" % i, timestamp=t0 + i * 1000, on_delivery=reports.cb(i))
    flush(p)
    # Offsets 10..19 one batch each, starting 100 s later.
    for i in range(10):
        produce(p, topic=topic, partition=0, value=b"b%d" % i, timestamp=t0 + 100_000 + i * 1000, on_delivery=reports.cb(10 + i))
        flush(p)
    reports.require_all_ok(20)
    queries = {
        "before_all": t0 - 5000,
        "first_exact": t0,
        "in_batch_between": t0 + 2500,
        "in_batch_exact": t0 + 4000,
        "last_of_batch": t0 + 9000,
        "gap_to_next_batch": t0 + 9001,
        "second_part_exact": t0 + 104_000,
        "second_part_between": t0 + 104_500,
        "last_exact": t0 + 109_000,
        "after_all": t0 + 200_000,
    }
    c = consumer(bootstrap)
    answers = {}
    for name, ts in queries.items():
        res = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=20)
        require(len(res) == 1, "offsets_for_times returned %r" % res)
        if res[0].error is not None:
            fail("offsets_for_times(%s=%d) error: %s" % (name, ts, res[0].error))
        answers[name] = res[0].offset
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    emit(
        {
            "delivered_offsets": [reports.by_index[i]["offset"] for i in range(20)],
            "answers": answers,
            "watermarks": [low, high],
        }
    )


def idempotent(bootstrap):
    """enable.idempotence=true: InitProducerId works, every record is delivered, and each
    is stored exactly once in produce order."""
    topic, parts, n = "idempotent", 2, 2000
    create_topic(bootstrap, topic, parts)
    p = producer(bootstrap, enable_idempotence=True, linger_ms=5)
    reports = Reports()
    for i in range(n):
        produce(p, topic=topic, partition=i % parts, key=b"%d" % i, value=b"idem-%d" % i, on_delivery=reports.cb(i))
        p.poll(0)
    flush(p)
    reports.require_all_ok(n)
    # A second idempotent producer (new producer id) continues at the next offsets.
    p2 = producer(bootstrap, enable_idempotence=True)
    for i in range(n, n + 10):
        produce(p2, topic=topic, partition=i % parts, key=b"%d" % i, value=b"idem-%d" % i, on_delivery=reports.cb(i))
    flush(p2)
    reports.require_all_ok(n + 10)
    expected = []
    for i in range(n + 10):
        r = reports.by_index[i]
        expected.append({"p": i % parts, "o": r["offset"], "k": b"%d" % i, "v": b"idem-%d" % i, "h": [], "ts": None})
    got = consume(bootstrap, [(topic, q, OFFSET_BEGINNING) for q in range(parts)], n + 10)
    for g in got:
        g["ts"] = None
    mismatches = check_roundtrip(expected, got)
    emit(
        {
            "produced": n + 10,
            "consumed": len(got),
            "delivered_partitions": sorted({reports.by_index[i]["partition"] for i in range(n + 10)}),
            "mismatches": mismatches,
        }
    )


def log_append_time(bootstrap):
    """With log.message.timestamp.type=LogAppendTime the broker overwrites the client's
    CreateTime: consumers see LogAppendTime stamps from the broker's clock, and so does the
    delivery report (from the produce response's log_append_time_ms)."""
    topic = "lat"
    create_topic(bootstrap, topic, 1)
    p = producer(bootstrap)
    reports = Reports()
    before = now_ms()
    for i in range(5):
        produce(p, topic=topic, partition=0, value=b"lat-%d" % i, timestamp=1_000_000_000_000 + i, on_delivery=reports.cb(i))
    flush(p)
    after = now_ms()
    reports.require_all_ok(5)
    got = consume(bootstrap, [(topic, 0, OFFSET_BEGINNING)], 5)
    emit(
        {
            "before_ms": before,
            "after_ms": after,
            "LOG_APPEND_TIME": TIMESTAMP_LOG_APPEND_TIME,
            "consumed": [[r["o"], r["ts"][0], r["ts"][1]] for r in got],
            "delivery_timestamps": [list(reports.by_index[i]["timestamp"]) for i in range(5)],
        }
    )


def autocreate(bootstrap):
    """Produce to a topic that does not exist: with auto.create.topics.enable the broker
    creates it (num.partitions partitions) and the record lands at offset 0; without, the
    delivery fails and the topic stays absent."""
    topic = "auto-created"
    p = producer(bootstrap, topic_metadata_propagation_max_ms=2000, message_timeout_ms=10000)
    reports = Reports()
    produce(p, topic=topic, value=b"x", on_delivery=reports.cb(0))
    p.flush(20)
    r = reports.by_index.get(0)
    require(r is not None, "no delivery report within 20 s")
    md = admin(bootstrap).list_topics(topic=topic, timeout=20).topics.get(topic)
    emit(
        {
            "delivery_error": r["err_name"],
            "offset": r["offset"] if r["err"] is None else None,
            "partitions": None if md is None or md.error is not None else len(md.partitions),
        }
    )


def all_topics(bootstrap):
    """Metadata for all topics (what AdminClient.list_topics() and Consumer.list_topics()
    ask for) lists exactly the topics that exist, internal ones included, as Kafka does."""
    names = ["all-a", "all-b", "all-c"]
    for i, n in enumerate(names):
        create_topic(bootstrap, n, i + 1)
    # A consumer with a group.id looks up its coordinator, which creates the internal
    # __consumer_offsets topic, as in Kafka. Make that happen before listing (committed()
    # needs the coordinator), so the expected listing is exact rather than a race.
    group_consumer = consumer(bootstrap)
    group_consumer.committed([TopicPartition("all-a", 0)], timeout=20)
    out = {}
    for kind, client in (("admin", admin(bootstrap)), ("consumer", group_consumer)):
        try:
            md = client.list_topics(timeout=20)
            out[kind] = {t: len(md.topics[t].partitions) for t in sorted(md.topics)}
        except KafkaException as e:
            out[kind] = "error: %s" % e.args[0]
    emit(out)


SCENARIOS = {
    "keyed": keyed,
    "codecs": codecs,
    "nulls": nulls,
    "large": large,
    "oversized": oversized,
    "min_insync": min_insync,
    "bulk": bulk,
    "times": times,
    "idempotent": idempotent,
    "log_append_time": log_append_time,
    "autocreate": autocreate,
    "all_topics": all_topics,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in SCENARIOS:
        fail("usage: ck_scenarios.py {%s} BOOTSTRAP [ARGS...]" % "|".join(SCENARIOS))
    SCENARIOS[sys.argv[1]](sys.argv[2], *sys.argv[3:])
