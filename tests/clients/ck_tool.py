#!/usr/bin/env python3
"""Small librdkafka (confluent-kafka) building blocks the Rust tests compose: create a topic,
produce numbered records with acks=all, stream records until killed, dump a topic.

Usage:
  ck_tool.py create  BOOTSTRAP TOPIC PARTITIONS [k=v ...]
  ck_tool.py produce BOOTSTRAP TOPIC COUNT START PARTITIONS [PREFIX [PAD]]
      record i (START <= i < START+COUNT) goes to partition i % PARTITIONS with key "i",
      value PREFIX-i (followed by PAD dots) and CreateTime 1700000000000 + i; prints {"acked": [[i, partition, offset], ...]} once every delivery
      report is in (fails if any delivery failed)
  ck_tool.py stream  BOOTSTRAP TOPIC PARTITIONS MAX_SECONDS
      produces s-0, s-1, ... (acks=all) until MAX_SECONDS or killed, printing one line
      "ACK i partition offset" per successful delivery report, flushed at once
  ck_tool.py dump    BOOTSTRAP TOPIC PARTITIONS
      reads every partition from the beginning up to its high watermark; prints
      {"watermarks": [[low, high], ...], "partitions": [[[offset, key, value, headers], ...], ...]}
      with keys, values and header values as UTF-8 text (null stays null)
  ck_tool.py configs BOOTSTRAP TOPIC [broker]
      prints {"configs": {name: value}} from DescribeConfigs of topic TOPIC (or, with
      "broker", of the broker whose node id is TOPIC), and {"sources": {name: source}}
  ck_tool.py cluster BOOTSTRAP
      prints {"cluster_id": ..., "controller": id, "nodes": [[id, host, port], ...]}
      from DescribeCluster
  ck_tool.py times BOOTSTRAP TOPIC PARTITION TS...
      prints {"offsets": [...]}: offsets_for_times for each timestamp (-1: none)
"""

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType

from kutil import emit, fail, now_ms, require, text

WAIT_S = 60


def create(bootstrap, topic, partitions, *configs):
    partitions = int(partitions)
    conf = dict(c.split("=", 1) for c in configs)
    a = AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=conf)], operation_timeout=30)
    try:
        fs[topic].result(timeout=WAIT_S)
    except Exception as e:  # noqa: BLE001
        fail("create_topics(%s) failed: %s" % (topic, e))
    deadline = time.time() + WAIT_S
    while True:
        t = a.list_topics(topic=topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            break
        if time.time() > deadline:
            fail("topic %s not in metadata after create: %r" % (topic, t))
        time.sleep(0.1)
    emit({"created": topic, "partitions": partitions})


def produce(bootstrap, topic, count, start, partitions, prefix="rec", pad="0"):
    count, start, partitions, pad = int(count), int(start), int(partitions), int(pad)
    dots = b"." * pad
    ts_base = now_ms() - start
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "message.timeout.ms": 30000})
    acked, failed = [], []

    def cb(i):
        def on_delivery(err, msg):
            if err is None:
                acked.append([i, msg.partition(), msg.offset()])
            else:
                failed.append([i, str(err)])

        return on_delivery

    for i in range(start, start + count):
        while True:
            try:
                p.produce(
                    topic,
                    key=b"%d" % i,
                    value=("%s-%d" % (prefix, i)).encode() + dots,
                    partition=i % partitions,
                    timestamp=ts_base + i,
                    on_delivery=cb(i),
                )
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
    left = p.flush(WAIT_S)
    require(left == 0, "%d records undelivered after flush" % left)
    require(not failed, "%d deliveries failed, first: %r" % (len(failed), failed[:5]))
    require(len(acked) == count, "%d acked, expected %d" % (len(acked), count))
    acked.sort()
    emit({"acked": acked, "ts_base": ts_base})


def stream(bootstrap, topic, partitions, max_seconds):
    partitions, max_seconds = int(partitions), float(max_seconds)
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 60000,
            "log_level": 0,
        }
    )
    out = sys.stdout

    def on_delivery(err, msg):
        if err is None:
            out.write("ACK %s %d %d\n" % (msg.key().decode(), msg.partition(), msg.offset()))
            out.flush()

    deadline = time.time() + max_seconds
    i = 0
    while time.time() < deadline:
        if len(p) < 5000:
            p.produce(topic, key=b"%d" % i, value=b"s-%d" % i, partition=i % partitions, on_delivery=on_delivery)
            i += 1
            if i % 100 == 0:
                p.poll(0)
        else:
            p.poll(0.01)
    p.flush(5)


def dump(bootstrap, topic, partitions):
    partitions = int(partitions)
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-tests-dump",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
        }
    )
    marks = [c.get_watermark_offsets(TopicPartition(topic, q), timeout=20) for q in range(partitions)]
    out = [[] for _ in range(partitions)]
    todo = {q for q in range(partitions) if marks[q][1] > marks[q][0]}
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(partitions)])
    deadline = time.time() + WAIT_S
    while todo:
        for m in c.consume(num_messages=1000, timeout=0.2):
            if m.error() is not None:
                fail("consumer error: %s" % m.error())
            q = m.partition()
            out[q].append([m.offset(), text(m.key()), text(m.value()), [[k, text(v)] for k, v in (m.headers() or [])]])
            if m.offset() + 1 >= marks[q][1]:
                todo.discard(q)
        if time.time() > deadline:
            fail("dump: partitions %r not read up to their high watermarks %r in %ds" % (sorted(todo), marks, WAIT_S))
    c.close()
    emit({"watermarks": [list(m) for m in marks], "partitions": out})


def configs(bootstrap, name, kind="topic"):
    a = AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    kinds = {"topic": ResourceType.TOPIC, "broker": ResourceType.BROKER}
    if kind not in kinds:
        fail("configs: resource kind must be topic or broker, not %r" % kind)
    rtype = kinds[kind]
    fs = a.describe_configs([ConfigResource(rtype, name)], request_timeout=30)
    res, sources = {}, {}
    for _, f in fs.items():
        try:
            for key, entry in f.result(timeout=WAIT_S).items():
                res[key] = entry.value
                sources[key] = ConfigSource(entry.source).name
        except Exception as e:  # noqa: BLE001
            fail("describe_configs(%s %s) failed: %s" % (kind, name, e))
    emit({"configs": res, "sources": sources})


def cluster(bootstrap):
    a = AdminClient({"bootstrap.servers": bootstrap})
    try:
        d = a.describe_cluster(request_timeout=30).result(timeout=WAIT_S)
    except Exception as e:  # noqa: BLE001
        fail("describe_cluster failed: %s" % e)
    emit({
        "cluster_id": d.cluster_id,
        "controller": d.controller.id if d.controller is not None else None,
        "nodes": [[n.id, n.host, n.port] for n in d.nodes],
    })


def times(bootstrap, topic, partition, *stamps):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strom-tests-times", "enable.auto.commit": False})
    offsets = []
    for ts in stamps:
        r = c.offsets_for_times([TopicPartition(topic, int(partition), int(ts))], timeout=20)
        if r[0].error is not None:
            fail("offsets_for_times(%s) error: %s" % (ts, r[0].error))
        offsets.append(r[0].offset)
    c.close()
    emit({"offsets": offsets})


COMMANDS = {
    "create": create,
    "produce": produce,
    "stream": stream,
    "dump": dump,
    "configs": configs,
    "cluster": cluster,
    "times": times,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        fail("usage: ck_tool.py {%s} BOOTSTRAP ARGS..." % "|".join(COMMANDS))
    COMMANDS[sys.argv[1]](*sys.argv[2:])
