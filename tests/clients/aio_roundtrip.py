#!/usr/bin/env python3
"""aiokafka round trip: the producer auto-creates TOPIC (broker default num.partitions),
sends keyed records with headers, a manually assigned consumer reads them back.

Usage: aio_roundtrip.py BOOTSTRAP TOPIC COUNT
Prints {"partitions": [...], "offsets": [...], "mismatches": [...]}.
"""

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kutil import emit, fail

WAIT_S = 60


async def main(bootstrap, topic, n):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await asyncio.wait_for(producer.start(), WAIT_S)
    sent, metas = [], []
    try:
        for i in range(n):
            key = b"aio-%d" % i
            value = (b"value-%d-" % i) * (i % 7 + 1)
            headers = [("n", b"%d" % i)]
            ts = 1_660_000_000_000 + i
            sent.append((key, value, headers, ts))
            metas.append(
                await asyncio.wait_for(
                    producer.send_and_wait(topic, value=value, key=key, partition=0, headers=headers, timestamp_ms=ts), WAIT_S
                )
            )
        partitions = sorted(await asyncio.wait_for(producer.partitions_for(topic), WAIT_S))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await asyncio.wait_for(consumer.start(), WAIT_S)
    got = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while len(got) < n:
            batch = await consumer.getmany(tp, timeout_ms=200)
            for r in batch.get(tp, []):
                got.append(r)
            if loop.time() > deadline:
                fail("consumed %d of %d records within %ds" % (len(got), n, WAIT_S))
        extra = await consumer.getmany(tp, timeout_ms=300)
        got.extend(extra.get(tp, []))
    finally:
        await consumer.stop()

    mismatches = []
    for i, (key, value, headers, ts) in enumerate(sent):
        if i >= len(got):
            mismatches.append({"missing": i})
            continue
        r = got[i]
        if (r.offset, r.key, r.value, [(k, bytes(v)) for k, v in r.headers], r.timestamp) != (metas[i].offset, key, value, headers, ts):
            mismatches.append({"record": i, "got": repr((r.offset, r.key, r.value[:30], r.headers, r.timestamp))})
    if len(got) > n:
        mismatches.append({"extra_records": len(got) - n})
    emit({"partitions": partitions, "offsets": [m.offset for m in metas], "consumed": len(got), "mismatches": mismatches})


if __name__ == "__main__":
    if len(sys.argv) != 4:
        fail("usage: aio_roundtrip.py BOOTSTRAP TOPIC COUNT")
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
