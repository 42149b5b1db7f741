#!/usr/bin/env python3
"""aiokafka consumer group: an idempotent GZIP producer sends COUNT keyed records with headers
to a 4-partition topic; one member reads them all and commits; a second member joins and the
partitions are split between them, with nothing delivered again after the commit; both leave
and the group is Empty.

Usage: aio_group.py BOOTSTRAP COUNT
Prints {"consumed": N, "mismatches": [...], "first_assignment": [...], "split": [[...], [...]],
"redelivered": N, "committed": {...}, "end_offsets": {...}, "state_after_leaving": "..."}.
"""

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from kutil import emit, fail

WAIT_S = 60
PARTITIONS = 4


async def produce(bootstrap, topic, n):
    """Sends n records; returns {(partition, offset): (key, value, headers)}."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, compression_type="gzip")
    await asyncio.wait_for(producer.start(), WAIT_S)
    sent = {}
    try:
        for i in range(n):
            key, value, headers = b"aio-key-%d" % i, b"aio-value-%d" % i, [("n", b"%d" % i)]
            meta = await asyncio.wait_for(producer.send_and_wait(topic, value=value, key=key, headers=headers), WAIT_S)
            sent[(meta.partition, meta.offset)] = (key, value, headers)
    finally:
        await producer.stop()
    return sent


def member(bootstrap, group):
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        heartbeat_interval_ms=300,
    )


def assigned(consumer):
    return sorted(tp.partition for tp in consumer.assignment())


async def main(bootstrap, n):
    topic = "aio-group-%d" % int(time.time() * 1000)
    group = "g-" + topic
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), WAIT_S)
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    sent = await produce(bootstrap, topic, n)

    first = member(bootstrap, group)
    await asyncio.wait_for(first.start(), WAIT_S)
    first.subscribe([topic])
    got = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < n:
        for records in (await first.getmany(timeout_ms=200)).values():
            got.extend(records)
        if time.monotonic() > deadline:
            fail("the first member read %d of %d records within %ds" % (len(got), n, WAIT_S))
    first_assignment = assigned(first)
    await first.commit()

    mismatches = []
    seen = set()
    for r in got:
        at = (r.partition, r.offset)
        want = sent.get(at)
        if at in seen:
            mismatches.append({"duplicate": list(at)})
        seen.add(at)
        if want is None or (r.key, r.value, [(k, bytes(v)) for k, v in r.headers]) != want:
            mismatches.append({"at": list(at), "got": repr((r.key, r.value, r.headers))})
    mismatches.extend({"missing": list(at)} for at in sent if at not in seen)

    second = member(bootstrap, group)
    await asyncio.wait_for(second.start(), WAIT_S)
    second.subscribe([topic])
    redelivered = 0
    deadline = time.monotonic() + WAIT_S
    while True:
        for consumer in (first, second):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                redelivered += len(records)
        split = [assigned(first), assigned(second)]
        if split[0] and split[1] and len(split[0]) + len(split[1]) == PARTITIONS:
            break
        if time.monotonic() > deadline:
            fail("no split between two members within %ds: %s" % (WAIT_S, split))
    # A last poll on the new assignment: committed positions leave nothing to read.
    for consumer in (first, second):
        for records in (await consumer.getmany(timeout_ms=500)).values():
            redelivered += len(records)

    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    committed = {str(tp.partition): await second.committed(tp) for tp in tps}
    end_offsets = {str(tp.partition): offset for tp, offset in (await second.end_offsets(tps)).items()}
    await second.stop()
    await first.stop()
    described = (await admin.describe_consumer_groups([group]))[0].groups[0]
    await admin.close()
    emit(
        {
            "consumed": len(got),
            "mismatches": mismatches,
            "first_assignment": first_assignment,
            "split": split,
            "redelivered": redelivered,
            "committed": committed,
            "end_offsets": end_offsets,
            "state_after_leaving": described[2],
        }
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: aio_group.py BOOTSTRAP COUNT")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
