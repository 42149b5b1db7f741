#!/usr/bin/env python3
"""A long-lived librdkafka client that keeps its connections open while a test abuses the
broker on other connections.

Usage: ck_steady.py BOOTSTRAP TOPIC

Creates TOPIC (1 partition), prints {"ready": true}, then for every line TAG read from stdin
produces TAG (acks=all) with the same producer, reads it back with the same consumer and
prints {"tag": TAG, "offset": OFFSET}. Any failure prints {"error": "..."} and exits 1.
"""

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

WAIT_S = 20


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def die(msg):
    say({"error": msg})
    sys.exit(1)


def main(bootstrap, topic):
    a = AdminClient({"bootstrap.servers": bootstrap})
    try:
        a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], operation_timeout=30)[topic].result(timeout=60)
    except Exception as e:  # noqa: BLE001
        die("create_topics failed: %s" % e)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "message.timeout.ms": WAIT_S * 1000})
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-tests-steady",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "fetch.wait.max.ms": 50,
        }
    )
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    say({"ready": True})
    for line in sys.stdin:
        tag = line.strip()
        if not tag:
            continue
        result = {}

        def on_delivery(err, msg):
            result["err"] = err
            result["offset"] = msg.offset()

        p.produce(topic, value=tag.encode(), partition=0, on_delivery=on_delivery)
        if p.flush(WAIT_S) != 0 or "err" not in result:
            die("produce of %s not acknowledged within %ds" % (tag, WAIT_S))
        if result["err"] is not None:
            die("produce of %s failed: %s" % (tag, result["err"]))
        deadline = time.time() + WAIT_S
        seen_at = None
        while seen_at is None:
            for m in c.consume(num_messages=100, timeout=0.2):
                if m.error() is not None:
                    die("consumer error: %s" % m.error())
                if m.value() == tag.encode():
                    seen_at = m.offset()
            if seen_at is None and time.time() > deadline:
                die("record %s (offset %d) not consumed within %ds" % (tag, result["offset"], WAIT_S))
        if seen_at != result["offset"]:
            die("record %s acked at offset %d but consumed at %d" % (tag, result["offset"], seen_at))
        say({"tag": tag, "offset": seen_at})
    c.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        die("usage: ck_steady.py BOOTSTRAP TOPIC")
    main(sys.argv[1], sys.argv[2])
