"""Helpers shared by the Python client scripts of Strom's black-box tests.

Every script takes the bootstrap address and its parameters on argv, prints one JSON object
as the last line of stdout and exits 0, or prints a clear message to stderr and exits 1.
The Rust tests (tests/*.rs) run the scripts and assert on the JSON.
"""

import base64
import json
import logging
import sys
import time


def emit(obj):
    """Print the result object as the last line of stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(msg):
    sys.stderr.write("FAIL: " + msg + "\n")
    sys.stderr.flush()
    sys.exit(1)


def require(cond, msg):
    if not cond:
        fail(msg)


def now_ms():
    return int(time.time() * 1000)


def hexb(b):
    """bytes -> hex string, None -> None (JSON null)."""
    return None if b is None else bytes(b).hex()


def text(b):
    """bytes -> str when UTF-8, None -> None, otherwise a marker with the hex."""
    if b is None:
        return None
    try:
        return bytes(b).decode("utf-8")
    except UnicodeDecodeError:
        return "<hex:" + bytes(b).hex() + ">"


def murmur2(data):
    """Kafka's org.apache.kafka.common.utils.Utils.murmur2, as a signed 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    mask = 0xFFFFFFFF
    h = (seed ^ length) & mask
    for i in range(length // 4):
        i4 = i * 4
        k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24)
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rem = length % 4
    tail_at = length & ~3
    if rem == 3:
        h ^= data[tail_at + 2] << 16
    if rem >= 2:
        h ^= data[tail_at + 1] << 8
    if rem >= 1:
        h ^= data[tail_at]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


# Test vectors from Kafka's UtilsTest.testMurmur2.
_MURMUR2_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
for _k, _v in _MURMUR2_VECTORS.items():
    if murmur2(_k) != _v:
        fail("murmur2 self-check failed for %r: %d != %d" % (_k, murmur2(_k), _v))


def kafka_partition(key, partition_count):
    """The partition Kafka's default partitioner (and librdkafka's murmur2) picks for a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partition_count


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def unsecured_jwt(claims):
    """An unsecured JWT (RFC 7515 alg none): header.payload. with an empty signature.
    `exp_in_s` in claims becomes `exp` that many seconds from now; `iat` defaults to now."""
    claims = dict(claims)
    now = int(time.time())
    claims.setdefault("iat", now)
    if "exp_in_s" in claims:
        claims["exp"] = now + claims.pop("exp_in_s")
    return b64url({"alg": "none"}) + "." + b64url(claims) + "."


class KafkaLog(logging.Handler):
    """kafka-python's warnings and errors, with seconds since `since` (set by reset()), to
    show why a connection failed and how soon."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []
        self.since = time.time()

    def reset(self):
        self.lines = []
        self.since = time.time()

    def emit(self, record):
        self.lines.append((round(record.created - self.since, 3), record.getMessage()[:500]))

    def first(self, text):
        """Seconds from reset() to the first line containing text, or None."""
        return next((at for at, line in self.lines if text in line), None)


def capture_kafka_log():
    """Installs and returns a KafkaLog on kafka-python's logger."""
    log = KafkaLog()
    logging.getLogger("kafka").addHandler(log)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    return log
