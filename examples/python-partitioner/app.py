"""Kafka's default partitioner for keyed records, as a Strom plugin written in Python.

The same choice as the Rust plugin `plugins/murmur2-partitioner`, the Java client and
librdkafka's `murmur2_random`: toPositive(murmur2(key)) % partitions. A record without a key
is placed by the murmur2 of its value (partition 0 without one), as the Rust plugin does: a
choice that depends only on the record, so client and broker agree.

componentize-py turns this module into a component of world `partitioner-plugin`
(wit/strom-plugin.wit); the class below implements the exported `partitioner` interface.
"""

from typing import List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import KafkaRecord, PluginError

INVALID_RECORD = 87
MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2` (seed 0x9747b28c), as an unsigned 32-bit value."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & MASK32
    whole = length & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & MASK32
        k ^= k >> 24
        k = (k * m) & MASK32
        h = (h * m) & MASK32
        h ^= k
    rest = length - whole
    if rest >= 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * m) & MASK32
    h ^= h >> 13
    h = (h * m) & MASK32
    h ^= h >> 15
    return h


def choose(data: bytes, partition_count: int) -> int:
    return (murmur2(data) & 0x7FFFFFFF) % partition_count


class Partitioner(exports.Partitioner):
    def partition(self, topic: str, partition_count: int, records: List[KafkaRecord]) -> List[int]:
        if partition_count == 0:
            raise Err(PluginError(error_code=INVALID_RECORD, message="the topic has no partitions"))
        return [
            choose(r.key, partition_count)
            if r.key is not None
            else choose(r.value, partition_count)
            if r.value is not None
            else 0
            for r in records
        ]
