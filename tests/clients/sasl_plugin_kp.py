#!/usr/bin/env python3
"""STROM-HMAC-SHA256 (a SASL mechanism in a WASM plugin) with kafka-python 3.0 and the
client helper examples/sasl-hmac/strom_hmac.py.

Usage:
  sasl_plugin_kp.py add-user PLAINTEXT_BOOTSTRAP USER PASSWORD
      creates USER's SCRAM-SHA-256 credential with confluent-kafka's AdminClient
      (alter_user_scram_credentials) -> {"user": USER, "ok": true}
  sasl_plugin_kp.py roundtrip SASL_BOOTSTRAP USER PASSWORD TOPIC TAG
      produces one record with kafka-python over SASL_PLAINTEXT/STROM-HMAC-SHA256 and reads
      it back with a consumer authenticated the same way
      -> {"offset": N, "consumed": [values of partition 0 from N]}
  sasl_plugin_kp.py refused SASL_BOOTSTRAP USER PASSWORD TIMEOUT_S EXPECT
      tries to produce with credentials the broker refuses. kafka-python 3.0 logs a refused
      login (SaslAuthenticationFailedError with the broker's reason, or a failed SaslHandshake)
      at once but retries until its timeout -> {"error": exception, "delivered": bool,
      "refusal": the first logged line containing EXPECT, "refusal_s": seconds until it was
      logged, "elapsed_s", "log": the first log lines}

Prints one JSON object as the last line of stdout.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "sasl-hmac"))

import strom_hmac  # noqa: E402,F401  registers STROM-HMAC-SHA256 with kafka-python
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kutil import capture_kafka_log, emit, fail, require  # noqa: E402

WAIT_S = 20


LOG = capture_kafka_log()


def sasl(bootstrap, user, password, **extra):
    c = {
        "bootstrap_servers": bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": strom_hmac.MECHANISM,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
        "request_timeout_ms": 10000,
        "reconnect_backoff_max_ms": 1000,
    }
    c.update(extra)
    return c


def add_user(bootstrap, user, password):
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin = AdminClient({"bootstrap.servers": bootstrap})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, info, password.encode())], request_timeout=WAIT_S)
    for name, f in futures.items():
        f.result(timeout=WAIT_S)
    return {"user": user, "ok": True}


def roundtrip(bootstrap, user, password, topic, tag):
    p = KafkaProducer(**sasl(bootstrap, user, password, max_block_ms=WAIT_S * 1000))
    value = ("%s-value" % tag).encode()
    offset = p.send(topic, key=tag.encode(), value=value, partition=0).get(timeout=WAIT_S).offset
    p.close(timeout=5)
    c = KafkaConsumer(**sasl(bootstrap, user, password, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="none"))
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, offset)
    consumed = []
    deadline = time.time() + WAIT_S
    while time.time() < deadline and not consumed:
        for recs in c.poll(timeout_ms=200).values():
            consumed.extend(r.value.decode() for r in recs)
    c.close()
    return {"offset": offset, "consumed": consumed}


def refused(bootstrap, user, password, timeout_s, expect):
    started = time.time()
    LOG.since = started
    error = None
    delivered = False
    try:
        p = KafkaProducer(**sasl(bootstrap, user, password, max_block_ms=timeout_s * 1000,
                                 bootstrap_timeout_ms=timeout_s * 1000))
        try:
            p.send("sasl-plugin-probe", value=b"probe").get(timeout=timeout_s)
            delivered = True
        finally:
            p.close(timeout=2)
    except Exception as e:  # noqa: BLE001
        error = type(e).__name__ + ": " + str(e)[:300]
    refusal = next(((at, line) for at, line in LOG.lines if expect in line), None)
    return {
        "error": error,
        "delivered": delivered,
        "refusal": refusal[1] if refusal else None,
        "refusal_s": refusal[0] if refusal else None,
        "elapsed_s": round(time.time() - started, 3),
        "log": ["%.3f %s" % line for line in LOG.lines[:10]],
    }


def main():
    require(len(sys.argv) >= 2, "usage: see the docstring")
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "add-user" and len(args) == 3:
        emit(add_user(*args))
    elif mode == "roundtrip" and len(args) == 5:
        emit(roundtrip(*args))
    elif mode == "refused" and len(args) == 5:
        emit(refused(args[0], args[1], args[2], int(args[3]), args[4]))
    else:
        fail("unknown mode or wrong arguments: %r" % sys.argv[1:])


if __name__ == "__main__":
    main()
