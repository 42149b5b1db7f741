#!/usr/bin/env python3
"""librdkafka (confluent-kafka) driver for the example plugins' test (tests/examples.rs).

Usage: examples_ck.py route BOOTSTRAP TOPIC PARTITIONS PLUGIN SPEC_JSON

Creates TOPIC with PARTITIONS partitions and the topic config partitioner=PLUGIN (route mode,
the default), produces SPEC["records"] ([[key, value], ...], strings or null) all addressed
to partition 0 (linger 5 ms, so many records share a batch; every delivery must succeed),
then reads every partition from the beginning until all came (and 0.5 s more for extras).
Answers {"records": [{"p", "o", "k", "v"}] sorted by partition and offset, "hw": [high
watermark per partition]}.
"""

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kutil import emit, fail, require, text

WAIT_S = 60


def create(bootstrap, topic, partitions, plugin):
    a = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config={"partitioner": plugin})
    fs = a.create_topics([new], operation_timeout=30, request_timeout=30)
    try:
        fs[topic].result(timeout=WAIT_S)
    except KafkaException as e:
        fail("creating %s with partitioner=%s: %s" % (topic, plugin, e.args[0].str()))


def encode(s):
    return None if s is None else s.encode()


def produce(bootstrap, topic, records):
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 30000, "linger.ms": 5})
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append("%s: %s" % (err.name(), err.str()))

    for key, value in records:
        p.produce(topic, key=encode(key), value=encode(value), partition=0, on_delivery=on_delivery)
    require(p.flush(WAIT_S) == 0, "records not delivered within %ds" % WAIT_S)
    require(not errors, "%d deliveries failed, first: %s" % (len(errors), errors[:3]))


def read_all(bootstrap, topic, partitions, expect, linger_s=0.5):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-tests-examples",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
            "fetch.wait.max.ms": 50,
        }
    )
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in range(partitions)])
    out = []
    deadline = time.time() + WAIT_S
    extra_until = None
    while extra_until is None or time.time() < extra_until:
        for m in c.consume(num_messages=1000, timeout=0.1):
            if m.error() is not None:
                fail("consumer error: %s" % m.error())
            out.append({"p": m.partition(), "o": m.offset(), "k": text(m.key()), "v": text(m.value())})
        if extra_until is None and len(out) >= expect:
            extra_until = time.time() + linger_s
        if time.time() > deadline:
            fail("consumed %d of %d records of %s within %ds" % (len(out), expect, topic, WAIT_S))
    hw = [c.get_watermark_offsets(TopicPartition(topic, q), timeout=10)[1] for q in range(partitions)]
    c.close()
    out.sort(key=lambda r: (r["p"], r["o"]))
    return out, hw


def route(bootstrap, topic, partitions, plugin, spec_json):
    partitions = int(partitions)
    records = json.loads(spec_json)["records"]
    create(bootstrap, topic, partitions, plugin)
    produce(bootstrap, topic, records)
    stored, hw = read_all(bootstrap, topic, partitions, len(records))
    emit({"records": stored, "hw": hw})


if __name__ == "__main__":
    if len(sys.argv) != 7 or sys.argv[1] != "route":
        fail("usage: examples_ck.py route BOOTSTRAP TOPIC PARTITIONS PLUGIN SPEC_JSON")
    route(*sys.argv[2:])
