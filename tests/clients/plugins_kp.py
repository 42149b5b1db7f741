#!/usr/bin/env python3
"""kafka-python scenarios for Strom's WASM plugins (tests/plugins.rs).

Usage: plugins_kp.py SCENARIO BOOTSTRAP [ARGS...]

produce TOPIC SPEC_JSON
    SPEC: {"records": [{"k", "v", "h": [[k, v]], "p"}], "sync": bool}. A KafkaProducer at its
    default settings (idempotent, acks=all) sends the records; with "sync" each record is
    sent by a producer of its own, so each travels in a batch of its own; with "linger_ms" the
    producer waits that long for more records, so records sent together for several
    partitions travel in one request. Answers {"reports":
    [{"p", "o"} | {"error": CLASS, "errno": N, "message": STR}]} in record order; "message"
    is the broker's error_message as kafka-python hands it over.
"""

import json
import sys

from kafka import KafkaProducer

from kutil import emit, fail

WAIT_S = 60


def encode(s):
    return None if s is None else s.encode()


def error_report(e):
    return {
        "error": type(e).__name__,
        "errno": getattr(e, "errno", None),
        "message": e.args[0] if e.args else None,
    }


def send_all(bootstrap, topic, records, linger_ms=0):
    """Sends records with one producer; returns one report per record."""
    p = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=30000, linger_ms=linger_ms)
    futures = [
        p.send(
            topic,
            key=encode(r.get("k")),
            value=encode(r.get("v")),
            headers=[(k, encode(v)) for k, v in r.get("h", [])],
            partition=r.get("p"),
        )
        for r in records
    ]
    p.flush(timeout=WAIT_S)
    reports = []
    for f in futures:
        try:
            md = f.get(timeout=WAIT_S)
            reports.append({"p": md.partition, "o": md.offset})
        except Exception as e:  # noqa: BLE001
            reports.append(error_report(e))
    p.close(timeout=10)
    return reports


def produce(bootstrap, topic, spec_json):
    spec = json.loads(spec_json)
    if spec.get("sync"):
        # A producer per record: an idempotent producer whose batch was refused would
        # otherwise carry on with a sequence-number gap, which is beside the point here.
        reports = [send_all(bootstrap, topic, [r])[0] for r in spec["records"]]
    else:
        reports = send_all(bootstrap, topic, spec["records"], spec.get("linger_ms", 0))
    emit({"reports": reports})


if __name__ == "__main__":
    scenarios = {"produce": produce}
    if len(sys.argv) < 3 or sys.argv[1] not in scenarios:
        fail("usage: plugins_kp.py {%s} BOOTSTRAP [ARGS...]" % "|".join(scenarios))
    scenarios[sys.argv[1]](*sys.argv[2:])
