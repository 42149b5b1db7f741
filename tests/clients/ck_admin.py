#!/usr/bin/env python3
"""librdkafka (confluent-kafka) AdminClient scenarios against a Strom broker.

Usage:
  ck_admin.py apis BOOTSTRAP
      CreateTopics (validate_only, and the error for each kind of bad request),
      CreatePartitions, IncrementalAlterConfigs, DescribeConfigs with sources,
      DescribeCluster, DeleteTopics; prints what each call answered.
  ck_admin.py delete_records BOOTSTRAP
      DeleteRecords inside a batch, ListOffsets earliest/latest, consuming from the new log
      start, fetching below it, deleting past the end.
  ck_admin.py low_watermark BOOTSTRAP TOPIC
      prints {"watermarks": [low, high]} of partition 0 and the first consumed offset.
  ck_admin.py apply_meta BOOTSTRAP
      creates meta-a (3 partitions, retention.ms=1234) and meta-b, sets cleanup.policy=compact
      on meta-a, grows it to 5 partitions, deletes meta-b.
  ck_admin.py state BOOTSTRAP TOPIC...
      prints those of the topics that exist with partition count and non-default configs.
"""

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from kutil import emit, fail, require

WAIT_S = 60


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})


def outcome(future):
    """None on success, else the Kafka error name (e.g. 'INVALID_PARTITIONS')."""
    try:
        future.result(timeout=WAIT_S)
        return None
    except KafkaException as e:
        return e.args[0].name()
    except Exception as e:  # noqa: BLE001
        return "%s: %s" % (type(e).__name__, e)


def present(a, names):
    """Which of `names` exist, by one Metadata request per topic (allow.auto.create.topics
    is false in admin(), so asking does not create). The all-topics Metadata request is tested on its own in
    librdkafka.rs, so that a fault there does not hide what these scenarios check."""
    return sorted(n for n in names if partition_count(a, n) is not None)


def partition_count(a, topic):
    t = a.list_topics(topic=topic, timeout=20).topics.get(topic)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def configs(a, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = a.describe_configs([res], request_timeout=30)[res].result(timeout=WAIT_S)
    return {
        name: {"value": e.value, "source": ConfigSource(e.source).name, "is_default": e.is_default}
        for name, e in entries.items()
    }


def create1(a, name, partitions=1, rf=1, config=None, validate_only=False):
    fs = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=rf, config=config or {})],
        validate_only=validate_only,
        operation_timeout=30,
    )
    return outcome(fs[name])


def apis(bootstrap):
    a = admin(bootstrap)
    out = {}
    out["validate_only"] = create1(a, "validated", 3, validate_only=True)
    out["validate_only_created"] = present(a, ["validated"]) == ["validated"]
    out["create"] = create1(a, "adm", 2, config={"retention.ms": "7200000"})
    out["create_again"] = create1(a, "adm", 2)
    out["create_rf3"] = create1(a, "rf3", 1, rf=3)
    out["create_0_partitions"] = create1(a, "zero", 0)
    out["create_bad_name"] = create1(a, "bad/name", 1)
    out["create_long_name"] = create1(a, "x" * 250, 1)
    out["create_unknown_config"] = create1(a, "badcfg", 1, config={"no.such.config": "1"})
    out["create_bad_config_value"] = create1(a, "badval", 1, config={"retention.ms": "not-a-number"})
    candidates = ["validated", "adm", "rf3", "zero", "bad/name", "x" * 250, "badcfg", "badval"]
    out["topics_after_failed_creates"] = present(a, candidates)

    fs = a.create_partitions([NewPartitions("adm", 4)], operation_timeout=30)
    out["grow_to_4"] = outcome(fs["adm"])
    out["partitions_after_grow"] = partition_count(a, "adm")
    out["shrink_to_2"] = outcome(a.create_partitions([NewPartitions("adm", 2)])["adm"])
    out["grow_unknown"] = outcome(a.create_partitions([NewPartitions("nope", 2)])["nope"])
    out["partitions_after_shrink"] = partition_count(a, "adm")

    c = configs(a, "adm")
    out["described"] = {k: c[k] for k in ("retention.ms", "cleanup.policy", "max.message.bytes", "segment.bytes") if k in c}

    def incr(ops):
        res = ConfigResource(ResourceType.TOPIC, "adm", incremental_configs=ops)
        return outcome(a.incremental_alter_configs([res])[res])

    out["incr_set"] = incr(
        [
            ConfigEntry("retention.ms", "5000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ]
    )
    c = configs(a, "adm")
    out["after_set"] = {k: c[k] for k in ("retention.ms", "cleanup.policy")}
    out["incr_delete"] = incr([ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    c = configs(a, "adm")
    out["after_delete"] = {k: c[k] for k in ("retention.ms", "cleanup.policy")}
    out["incr_bad_value"] = incr([ConfigEntry("retention.ms", "abc", incremental_operation=AlterConfigOpType.SET)])
    out["incr_unknown_key"] = incr([ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)])
    c = configs(a, "adm")
    out["after_bad_alters"] = {k: c[k]["value"] for k in ("retention.ms", "cleanup.policy")}

    cl = a.describe_cluster(request_timeout=30).result(timeout=WAIT_S)
    out["cluster"] = {
        "cluster_id_len": len(cl.cluster_id or ""),
        "controller_is_node": cl.controller is not None and cl.controller.id in [n.id for n in cl.nodes],
        "nodes": [[n.host, n.port] for n in cl.nodes],
    }

    out["delete"] = outcome(a.delete_topics(["adm"], operation_timeout=30)["adm"])
    out["delete_again"] = outcome(a.delete_topics(["adm"], operation_timeout=30)["adm"])
    out["topics_at_end"] = present(a, candidates)
    emit(out)


def produce_one_batch(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 500, "acks": "all"})
    errs = []
    for i in range(n):
        p.produce(topic, value=b"r%d" % i, partition=0, on_delivery=lambda e, m: e and errs.append(str(e)))
    require(p.flush(WAIT_S) == 0 and not errs, "produce failed: %r" % errs)


def first_offsets(bootstrap, topic, start, n):
    """Consume from `start`; return (offsets of the first n records, error name or None)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "strom-tests-admin",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
        }
    )
    c.assign([TopicPartition(topic, 0, start)])
    got, err = [], None
    deadline = time.time() + 15
    while len(got) < n and err is None and time.time() < deadline:
        for m in c.consume(num_messages=100, timeout=0.2):
            if m.error() is not None:
                err = m.error().name()
                break
            got.append([m.offset(), m.value().decode()])
    c.close()
    return got[:n], err


def delete_records(bootstrap):
    a = admin(bootstrap)
    topic = "dr"
    require(create1(a, topic, 1) is None, "create failed")
    produce_one_batch(bootstrap, topic, 10)  # offsets 0-9, one batch
    out = {}
    tp = TopicPartition(topic, 0, 4)
    try:
        res = a.delete_records([tp], request_timeout=30)[tp].result(timeout=WAIT_S)
        out["delete_before_4"] = res.low_watermark
    except KafkaException as e:
        out["delete_before_4"] = e.args[0].name()

    def list_offsets(spec):
        t = TopicPartition(topic, 0)
        try:
            return a.list_offsets({t: spec}, request_timeout=30)[t].result(timeout=WAIT_S).offset
        except KafkaException as e:
            return e.args[0].name()

    out["earliest"] = list_offsets(OffsetSpec.earliest())
    out["latest"] = list_offsets(OffsetSpec.latest())
    out["from_beginning"], out["from_beginning_err"] = first_offsets(bootstrap, topic, OFFSET_BEGINNING, 6)
    out["from_2"], out["from_2_err"] = first_offsets(bootstrap, topic, 2, 1)
    tp = TopicPartition(topic, 0, 100)
    try:
        a.delete_records([tp], request_timeout=30)[tp].result(timeout=WAIT_S)
        out["delete_past_end"] = None
    except KafkaException as e:
        out["delete_past_end"] = e.args[0].name()
    emit(out)


def low_watermark(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "strom-tests-admin", "enable.auto.commit": False})
    marks = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=20)
    c.close()
    got, err = first_offsets(bootstrap, topic, OFFSET_BEGINNING, 1)
    emit({"watermarks": list(marks), "first": got, "err": err})


def apply_meta(bootstrap):
    a = admin(bootstrap)
    require(create1(a, "meta-a", 3, config={"retention.ms": "1234"}) is None, "create meta-a")
    require(create1(a, "meta-b", 1) is None, "create meta-b")
    res = ConfigResource(
        ResourceType.TOPIC,
        "meta-a",
        incremental_configs=[ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)],
    )
    require(outcome(a.incremental_alter_configs([res])[res]) is None, "alter meta-a")
    require(outcome(a.create_partitions([NewPartitions("meta-a", 5)])["meta-a"]) is None, "grow meta-a")
    require(outcome(a.delete_topics(["meta-b"], operation_timeout=30)["meta-b"]) is None, "delete meta-b")
    emit({"applied": True})


def state(bootstrap, *names):
    a = admin(bootstrap)
    out = {}
    for t in present(a, names):
        c = configs(a, t)
        out[t] = {
            "partitions": partition_count(a, t),
            "configs": {k: v["value"] for k, v in sorted(c.items()) if not v["is_default"]},
        }
    emit({"topics": out})


COMMANDS = {
    "apis": apis,
    "delete_records": delete_records,
    "low_watermark": low_watermark,
    "apply_meta": apply_meta,
    "state": state,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        fail("usage: ck_admin.py {%s} BOOTSTRAP [ARGS]" % "|".join(COMMANDS))
    COMMANDS[sys.argv[1]](*sys.argv[2:])
