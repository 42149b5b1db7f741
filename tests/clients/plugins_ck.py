#!/usr/bin/env python3
"""librdkafka (confluent-kafka) scenarios for Strom's WASM plugins (tests/plugins.rs).

Usage: plugins_ck.py SCENARIO BOOTSTRAP [ARGS...]

create TOPIC PARTITIONS [KEY=VALUE...]
    CreateTopics with configs through the AdminClient: {"error": null} or
    {"error": NAME, "code": N, "message": STR}.
alter TOPIC KEY=VALUE|KEY...
    IncrementalAlterConfigs: KEY=VALUE sets, a bare KEY deletes; same answer as create.
alter_legacy TOPIC KEY=VALUE...
    AlterConfigs, the legacy request whose configs replace all of the topic's configs.
produce TOPIC SPEC_JSON
    SPEC: {"records": [{"k", "v", "h": [[k, v]], "p", "ts"}], "sync": bool, "conf": {...}}
    (k, v strings or null; p, ts optional). With "sync", each record is flushed before the
    next is produced, so each travels in a batch of its own. Answers {"reports": [{"err",
    "code", "message", "p", "o", "ms"}]} in record order; "ms" is how long the delivery
    report took from produce().
dump TOPIC PARTITIONS EXPECT
    Reads every partition from the beginning until EXPECT records came (then lingers 0.5 s
    for extras): {"records": [{"p", "o", "k", "v", "h", "ts"}], "hw": [high watermark per partition]}
    sorted by partition and offset. EXPECT 0 only lingers.
swap TOPIC NEW_PLUGIN
    A steady idempotent producer on TOPIC (1 partition); after 1.5 s, IncrementalAlterConfigs
    sets interceptors.produce=NEW_PLUGIN while the producer keeps going; 1.5 s later it stops
    and flushes. Answers {"sent", "acked", "failed": [...], "alter": error-or-null,
    "offsets_by_seq": {...}, "by_offset": [[offset, seq, stamp]]} read back from the topic.
misbehave GOOD_TOPIC BAD_TOPIC...
    A steady producer on GOOD_TOPIC runs in the background while one record is produced to
    each BAD_TOPIC in turn (one producer per bad topic, retries off): {"bad": {topic: {"code",
    "err", "message", "ms", "good_acked_during"}}, "good": {"sent", "acked", "failed",
    "max_ms"}}.
"""

import json
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from kutil import emit, fail, require, text

WAIT_S = 60


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})


def outcome(future):
    try:
        future.result(timeout=WAIT_S)
        return {"error": None}
    except KafkaException as e:
        err = e.args[0]
        return {"error": err.name(), "code": err.code(), "message": err.str()}


def create(bootstrap, topic, partitions, *configs):
    config = dict(c.split("=", 1) for c in configs)
    a = admin(bootstrap)
    fs = a.create_topics(
        [NewTopic(topic, num_partitions=int(partitions), replication_factor=1, config=config)],
        operation_timeout=30,
        request_timeout=30,
    )
    emit(outcome(fs[topic]))


def alter_ops(bootstrap, topic, ops):
    entries = []
    for op in ops:
        if "=" in op:
            k, v = op.split("=", 1)
            entries.append(ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET))
        else:
            entries.append(ConfigEntry(op, None, incremental_operation=AlterConfigOpType.DELETE))
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    a = admin(bootstrap)  # kept alive until the future resolves
    return outcome(a.incremental_alter_configs([res])[res])


def alter(bootstrap, topic, *ops):
    emit(alter_ops(bootstrap, topic, ops))


def alter_legacy(bootstrap, topic, *configs):
    res = ConfigResource(ResourceType.TOPIC, topic, set_config=dict(c.split("=", 1) for c in configs))
    a = admin(bootstrap)  # kept alive until the future resolves
    emit(outcome(a.alter_configs([res])[res]))


def producer(bootstrap, conf=None):
    c = {"bootstrap.servers": bootstrap, "message.timeout.ms": 30000, "linger.ms": 5}
    c.update(conf or {})
    return Producer(c)


def encode(s):
    return None if s is None else s.encode()


def produce(bootstrap, topic, spec_json):
    spec = json.loads(spec_json)
    p = producer(bootstrap, spec.get("conf"))
    reports = [None] * len(spec["records"])

    def cb(i, started):
        def on_delivery(err, msg):
            reports[i] = {
                "err": None if err is None else err.name(),
                "code": None if err is None else err.code(),
                "message": None if err is None else err.str(),
                "p": msg.partition(),
                "o": msg.offset() if err is None else None,
                "ms": int((time.time() - started) * 1000),
            }

        return on_delivery

    for i, r in enumerate(spec["records"]):
        kw = {
            "topic": topic,
            "key": encode(r.get("k")),
            "value": encode(r.get("v")),
            "headers": [(k, encode(v)) for k, v in r.get("h", [])],
            "on_delivery": cb(i, time.time()),
        }
        if r.get("p") is not None:
            kw["partition"] = r["p"]
        if r.get("ts") is not None:
            kw["timestamp"] = r["ts"]
        p.produce(**kw)
        if spec.get("sync"):
            require(p.flush(WAIT_S) == 0, "record %d not delivered within %ds" % (i, WAIT_S))
    require(p.flush(WAIT_S) == 0, "records not delivered within %ds" % WAIT_S)
    require(all(r is not None for r in reports), "missing delivery reports: %r" % reports)
    emit({"reports": reports})


def read_all(bootstrap, topic, partitions, expect, linger_s=0.5):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-tests-plugins",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 50,
        }
    )
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(partitions)])
    out = []
    deadline = time.time() + WAIT_S
    extra_until = time.time() + linger_s if expect == 0 else None
    while True:
        for m in c.consume(num_messages=1000, timeout=0.1):
            if m.error() is not None:
                fail("consumer error: %s" % m.error())
            out.append(
                {
                    "p": m.partition(),
                    "o": m.offset(),
                    "k": text(m.key()),
                    "v": text(m.value()),
                    "h": [[k, text(v)] for k, v in (m.headers() or [])],
                    "ts": m.timestamp()[1],
                }
            )
        if len(out) >= expect and extra_until is None:
            extra_until = time.time() + linger_s
        if extra_until is not None and time.time() >= extra_until:
            break
        if time.time() > deadline:
            fail("consumed %d of %d records of %s within %ds" % (len(out), expect, topic, WAIT_S))
    hw = [c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1] for q in range(partitions)]
    c.close()
    out.sort(key=lambda r: (r["p"], r["o"]))
    return out, hw


def dump(bootstrap, topic, partitions, expect):
    records, hw = read_all(bootstrap, topic, int(partitions), int(expect))
    emit({"records": records, "hw": hw})


def swap(bootstrap, topic, new_plugin):
    p = producer(bootstrap, {"enable.idempotence": True, "acks": "all", "linger.ms": 2})
    acked, failed = {}, []
    lock = threading.Lock()

    def cb(seq):
        def on_delivery(err, msg):
            with lock:
                if err is None:
                    acked[seq] = msg.offset()
                else:
                    failed.append({"seq": seq, "err": err.name(), "message": err.str()})

        return on_delivery

    seq = 0
    alter_result = {"error": "not run"}
    started = time.time()
    altered_at = None
    while True:
        now = time.time()
        if altered_at is None and now - started >= 1.5:
            # The producer's own thread keeps sending what is queued while this blocks.
            alter_result = alter_ops(bootstrap, topic, ["interceptors.produce=" + new_plugin])
            altered_at = time.time()
        if altered_at is not None and now - altered_at >= 1.5:
            break
        p.produce(topic, value=b"seq-%d" % seq, partition=0, on_delivery=cb(seq))
        seq += 1
        p.poll(0)
        time.sleep(0.002)
    require(p.flush(WAIT_S) == 0, "records not delivered within %ds" % WAIT_S)
    records, _ = read_all(bootstrap, topic, 1, len(acked))
    by_offset = []
    for r in records:
        stamp = [v for k, v in r["h"] if k == "x-strom-stamp"]
        by_offset.append([r["o"], int(r["v"].split("-")[1]), stamp])
    emit(
        {
            "sent": seq,
            "acked": len(acked),
            "failed": failed[:10],
            "failed_count": len(failed),
            "alter": alter_result["error"],
            "offsets_by_seq": [acked.get(s) for s in range(seq)],
            "by_offset": by_offset,
        }
    )


def misbehave(bootstrap, good_topic, *bad_topics):
    stop = threading.Event()
    good = {"sent": 0, "acked": 0, "failed": [], "max_ms": 0}
    acked_at = []  # times of good acknowledgements
    lock = threading.Lock()

    def steady():
        p = producer(bootstrap, {"acks": "all", "linger.ms": 0})

        def cb(sent_at):
            def on_delivery(err, msg):
                now = time.time()
                with lock:
                    if err is None:
                        good["acked"] += 1
                        acked_at.append(now)
                    else:
                        good["failed"].append(err.str())
                    good["max_ms"] = max(good["max_ms"], int((now - sent_at) * 1000))

            return on_delivery

        while not stop.is_set():
            p.produce(good_topic, value=b"good-%d" % good["sent"], partition=0, on_delivery=cb(time.time()))
            good["sent"] += 1
            p.poll(0)
            time.sleep(0.005)
        require(p.flush(WAIT_S) == 0, "good records not delivered within %ds" % WAIT_S)

    t = threading.Thread(target=steady)
    t.start()
    time.sleep(0.5)
    bad = {}
    try:
        for topic in bad_topics:
            p = producer(bootstrap, {"acks": "all", "linger.ms": 0, "retries": 0})
            result = {}

            def on_delivery(err, msg, result=result):
                result["err"] = err
                result["done"] = time.time()

            started = time.time()
            p.produce(topic, value=b'{"id": 1}', partition=0, on_delivery=on_delivery)
            require(p.flush(WAIT_S) == 0, "no delivery report from %s within %ds" % (topic, WAIT_S))
            err = result["err"]
            with lock:
                during = sum(1 for a in acked_at if started <= a <= result["done"])
            bad[topic] = {
                "code": None if err is None else err.code(),
                "err": None if err is None else err.name(),
                "message": None if err is None else err.str(),
                "ms": int((result["done"] - started) * 1000),
                "good_acked_during": during,
            }
            time.sleep(0.3)
    finally:
        stop.set()
        t.join(WAIT_S)
    good["failed"] = good["failed"][:5]
    emit({"bad": bad, "good": good})


if __name__ == "__main__":
    scenarios = {
        "create": create,
        "alter": alter,
        "alter_legacy": alter_legacy,
        "produce": produce,
        "dump": dump,
        "swap": swap,
        "misbehave": misbehave,
    }
    if len(sys.argv) < 3 or sys.argv[1] not in scenarios:
        fail("usage: plugins_ck.py {%s} BOOTSTRAP [ARGS...]" % "|".join(scenarios))
    scenarios[sys.argv[1]](*sys.argv[2:])
