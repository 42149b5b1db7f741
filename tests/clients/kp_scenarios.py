#!/usr/bin/env python3
"""kafka-python scenarios against a Strom broker.

Usage: kp_scenarios.py {roundtrip|admin} BOOTSTRAP

roundtrip: KafkaAdminClient creates a 3-partition topic; a KafkaProducer at its default
  settings (kafka-python 3.x: enable_idempotence=True, acks=all) sends keyed records with
  headers and timestamps; a KafkaConsumer (group_id=None, manual assignment) reads them back.
  Checks byte equality, the murmur2 partition of each key, the offsets the producer was told.
admin: create_topics with configs, describe_configs, create again (TopicAlreadyExists),
  delete_topics, and the topic is gone from list_topics.
"""

import random
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from kutil import emit, fail, kafka_partition, require

WAIT_S = 60


def roundtrip(bootstrap):
    topic, parts, n = "kp-roundtrip", 3, 300
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    admin.create_topics({topic: {"num_partitions": parts, "replication_factor": 1}})
    deadline = time.time() + WAIT_S
    while topic not in admin.list_topics():
        if time.time() > deadline:
            fail("topic %s not listed after create_topics" % topic)
        time.sleep(0.1)
    admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    idempotent = bool(producer.config.get("enable_idempotence"))
    rnd = random.Random(4242)
    sent, futures = [], []
    for i in range(n):
        key = b"kp-key-%d" % i if i % 3 else rnd.randbytes(rnd.randint(1, 24))
        value = rnd.randbytes(rnd.choice([0, 5, 100, 2000]))
        headers = [("idx", b"%d" % i), ("bin", rnd.randbytes(8))] if i % 2 else []
        ts = 1_650_000_000_000 + i * 13
        sent.append((key, value, headers, ts))
        futures.append(producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
    producer.flush(timeout=WAIT_S)
    metas = []
    for i, f in enumerate(futures):
        try:
            metas.append(f.get(timeout=WAIT_S))
        except Exception as e:  # noqa: BLE001
            fail("send %d failed: %r" % (i, e))
    producer.close(timeout=10)

    mismatches = []
    per_part = {}
    for i, (key, _, _, _) in enumerate(sent):
        want = kafka_partition(key, parts)
        if metas[i].partition != want:
            mismatches.append({"record": i, "producer_partition": metas[i].partition, "murmur2_partition": want})
        per_part.setdefault(metas[i].partition, []).append(metas[i].offset)
    for q, offs in per_part.items():
        if offs != list(range(len(offs))):
            mismatches.append({"partition": q, "producer_offsets_not_in_send_order": offs[:20]})

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
    )
    tps = [TopicPartition(topic, q) for q in range(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = {}
    deadline = time.time() + WAIT_S
    extra_until = None
    while True:
        for tp, recs in consumer.poll(timeout_ms=200, max_records=1000).items():
            for r in recs:
                if (r.partition, r.offset) in got:
                    mismatches.append({"duplicate": [r.partition, r.offset]})
                got[(r.partition, r.offset)] = r
        if len(got) >= n and extra_until is None:
            extra_until = time.time() + 0.5
        if extra_until is not None and time.time() >= extra_until:
            break
        if time.time() > deadline:
            fail("consumed %d of %d records within %ds" % (len(got), n, WAIT_S))
    consumer.close()

    for i, (key, value, headers, ts) in enumerate(sent):
        pos = (metas[i].partition, metas[i].offset)
        r = got.pop(pos, None)
        if r is None:
            mismatches.append({"missing": list(pos), "record": i})
            continue
        if r.key != key:
            mismatches.append({"record": i, "field": "key", "expected": key.hex(), "got": r.key and r.key.hex()})
        if r.value != value:
            mismatches.append({"record": i, "field": "value", "expected_len": len(value), "got_len": r.value and len(r.value)})
        if [(k, bytes(v)) for k, v in r.headers] != headers:
            mismatches.append({"record": i, "field": "headers", "expected": repr(headers), "got": repr(r.headers)})
        if r.timestamp != ts or r.timestamp_type != 0:
            mismatches.append({"record": i, "field": "timestamp", "expected": [0, ts], "got": [r.timestamp_type, r.timestamp]})
    for pos in sorted(got):
        mismatches.append({"unexpected": list(pos)})
    emit(
        {
            "produced": n,
            "idempotent_producer": idempotent,
            "partitions_used": sorted(per_part),
            "mismatches": mismatches,
        }
    )


def _config_values(described, topic):
    """Flatten describe_configs' answer (its shape differs across kafka-python versions) to
    {name: value}."""
    if isinstance(described, dict):
        for rtype in described.values():
            if isinstance(rtype, dict) and topic in rtype:
                entries = rtype[topic]
                out = {}
                for name, data in entries.items():
                    if isinstance(data, dict):
                        out[name] = data.get("value")
                        out[name + "/source"] = data.get("config_source")
                    else:
                        out[name] = data
                return out
    # Older shape: a list of DescribeConfigsResponse objects.
    out = {}
    for resp in described if isinstance(described, list) else [described]:
        for res in resp.resources:
            err, _msg, _rtype, name = res[0], res[1], res[2], res[3]
            require(err == 0, "describe_configs error %d for %s" % (err, name))
            for entry in res[4]:
                out[entry[0]] = entry[1]
    return out


def admin(bootstrap):
    topic = "kp-admin"
    a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    a.create_topics(
        {topic: {"num_partitions": 2, "replication_factor": 1, "configs": {"retention.ms": "123456", "cleanup.policy": "delete"}}}
    )
    deadline = time.time() + WAIT_S
    while topic not in a.list_topics():
        if time.time() > deadline:
            fail("topic %s not listed after create_topics" % topic)
        time.sleep(0.1)
    described = a.describe_topics([topic])
    partitions = sorted(p["partition_index"] for p in described[0]["partitions"])
    configs = _config_values(
        a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"), topic
    )
    already = None
    try:
        a.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
        already = "no error"
    except TopicAlreadyExistsError as e:
        already = type(e).__name__
    except Exception as e:  # noqa: BLE001
        already = "%s: %s" % (type(e).__name__, e)
    a.delete_topics([topic])
    deadline = time.time() + WAIT_S
    while topic in a.list_topics():
        if time.time() > deadline:
            fail("topic %s still listed %ds after delete_topics" % (topic, WAIT_S))
        time.sleep(0.1)
    remaining = a.list_topics()
    a.close()
    emit(
        {
            "partitions": partitions,
            "retention.ms": configs.get("retention.ms"),
            "cleanup.policy": configs.get("cleanup.policy"),
            "max.message.bytes": configs.get("max.message.bytes"),
            "retention.ms/source": configs.get("retention.ms/source"),
            "max.message.bytes/source": configs.get("max.message.bytes/source"),
            "config_count": len(configs),
            "create_again": already,
            "listed_after_delete": topic in remaining,
        }
    )


if __name__ == "__main__":
    scenarios = {"roundtrip": roundtrip, "admin": admin}
    if len(sys.argv) != 3 or sys.argv[1] not in scenarios:
        fail("usage: kp_scenarios.py {roundtrip|admin} BOOTSTRAP")
    scenarios[sys.argv[1]](sys.argv[2])
