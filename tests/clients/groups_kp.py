#!/usr/bin/env python3
"""A long-running kafka-python (3.x) group member for tests/groups.rs.

Usage: groups_kp.py member BOOTSTRAP TOPIC GROUP NAME [session=MS] [heartbeat=MS]
       groups_kp.py committed BOOTSTRAP TOPIC GROUP PARTITIONS
       groups_kp.py commit BOOTSTRAP TOPIC GROUP OFFSETS

commit: commits {"P": [offset, metadata]} for GROUP as a consumer with manually assigned
partitions (generation -1 and no member id: Kafka accepts this only while the group has no
members); prints {"committed": N}.

committed: prints {"committed": {"P": [offset, metadata] or null}} as one JSON line, read
with KafkaConsumer.committed(metadata=True) (OffsetFetch from kafka-python).

member:

Prints one JSON object per line on stdout: {"ev": "ready"}, {"ev": "assign"|"revoke",
"partitions": [...]}, {"ev": "record", "p": P, "o": O}, {"ev": "commit_failed", ...}, each
with "t" (ms since the epoch). Commits each record synchronously after "processing" it.
Runs until killed; the test stops it with SIGSTOP to make it a member that has gone silent
(kafka-python heartbeats from a background thread, which SIGSTOP freezes too).
"""

import json
import sys
import time

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from kutil import emit, fail


def out(obj):
    obj["t"] = int(time.time() * 1000)
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        out({"ev": "revoke", "partitions": sorted(tp.partition for tp in revoked)})

    def on_partitions_assigned(self, assigned):
        out({"ev": "assign", "partitions": sorted(tp.partition for tp in assigned)})


def member(bootstrap, topic, group, name, *opts):
    kv = dict(o.split("=", 1) for o in opts)
    c = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(kv.get("session", 6000)),
        heartbeat_interval_ms=int(kv.get("heartbeat", 1000)),
        max_poll_interval_ms=30000,
        request_timeout_ms=30000,
    )
    # Learn the topic's partitions before joining. Otherwise the first generation can be
    # assigned nothing (kafka-python's metadata is still empty) and the client rejoins on
    # the metadata change; kafka-python 3 was seen to stall after that rejoin (no
    # assignment callback, no heartbeats) under CI load, which is not what these tests test.
    deadline = time.time() + 30
    while not c.partitions_for_topic(topic) and time.time() < deadline:
        time.sleep(0.1)
    c.subscribe([topic], listener=Listener())
    out({"ev": "ready"})
    while True:
        batch = c.poll(timeout_ms=100)
        for tp, records in batch.items():
            for r in records:
                out({"ev": "record", "p": r.partition, "o": r.offset})
                try:
                    c.commit({TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.offset + 1, "", -1)})
                except Exception as e:  # noqa: BLE001
                    out({"ev": "commit_failed", "p": r.partition, "o": r.offset, "error": repr(e)})


def committed(bootstrap, topic, group, partitions):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      request_timeout_ms=30000)
    out = {}
    for p in range(int(partitions)):
        om = c.committed(TopicPartition(topic, p), metadata=True, timeout_ms=30000)
        out[str(p)] = None if om is None else [om.offset, om.metadata]
    c.close(autocommit=False)
    emit({"committed": out})


def commit(bootstrap, topic, group, offsets_json):
    wanted = {TopicPartition(topic, int(p)): OffsetAndMetadata(o, m, -1)
              for p, (o, m) in json.loads(offsets_json).items()}
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      request_timeout_ms=30000)
    c.assign(sorted(wanted))
    c.commit(wanted)
    c.close(autocommit=False)
    emit({"committed": len(wanted)})


def main():
    modes = {"member": member, "committed": committed, "commit": commit}
    if len(sys.argv) < 2 or sys.argv[1] not in modes:
        fail(__doc__)
    modes[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
