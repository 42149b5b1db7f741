#!/usr/bin/env python3
"""kafka-python (and Python's own ssl module) against a Strom broker's secured listeners.

Usage: security_kp.py ops JSON

JSON is {"bootstrap": HOST:PORT, "sec": SEC, "ops": [OP, ...]}; each OP is an object with
"op" and its parameters and may carry its own "bootstrap" and "sec". The script prints
{"results": [RESULT, ...]}, one per op, each with "elapsed_s". Expected failures (a refused
login, an authorization error) are results, named by kafka-python's exception class (for
Kafka errors also "code", the error code): the Rust test asserts on them. Every result also
has "log": kafka-python's last warnings and errors during the op ("SECONDS message"), since
kafka-python only logs some refusals (a topic hidden from a subscribed consumer).

SEC: {"protocol": PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL, "ca": PEM to verify the broker with
(hostname checked), "cert"/"key": client certificate, "mechanism": PLAIN|SCRAM-SHA-256|
SCRAM-SHA-512|OAUTHBEARER, "user"/"password", "jwt_claims": claims of the unsecured JWT
(alg none) an OAUTHBEARER token provider hands over; "exp_in_s" there becomes
"exp": now + exp_in_s, "iat" is added}.

  roundtrip {topic, n, tag}   produce n tagged records to partition 0, read them back
                              -> {delivered, delivery_errors, consumed}
  connect_fail {expect_log, timeout_s}
                              build a producer and send one record -> {error, code,
                              first_error_s, delivered, log, expect_log_s}. kafka-python 3.0
                              logs a refused login (SaslAuthenticationFailedError) at once but
                              retries until its timeout (KafkaTimeoutError): expect_log_s is
                              when the first log line containing expect_log was written.
  produce {topic, value}      -> {error: null|ExceptionName, code, offset}
  fetch {topic, expect}       assign partition 0, from the beginning -> {error, code, values}
  group_consume {topic, group, expect} subscribe as a group member, then commit
                              -> {error, code, values, commit_error}
  metadata {}                 KafkaAdminClient.list_topics -> {topics} | {error}
  describe_acls {topic}       KafkaAdminClient.describe_acls for a literal topic -> {acls} | {error}
  peer_cert {port, ca, expect_cert, timeout_s}
                              connect with TLS (ssl module, CA-verified, SNI localhost) until
                              the broker presents expect_cert or timeout_s passes ->
                              {matched, first, seen, connections}; certificates as SHA-256 of DER
  raw_request {port, api_key, api_version, body_hex}
                              send one request frame in plaintext (e.g. to a TLS port, or to a
                              SASL port before authenticating); read one response frame, until
                              EOF or for 5 s ->
                              {closed, kafka_response, response_len, response_hex}
  raw_tls_on_plain {port, ca} TLS handshake against a plaintext port -> {handshake_ok, error}
  tls_handshake {port, ca, min_version, max_version}
                              a handshake limited to TLS versions (ssl.TLSVersion names:
                              TLSv1_2, TLSv1_3) -> {ok, version, error}
"""

import hashlib
import json
import socket
import ssl
import struct
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient
from kafka.admin import ResourcePatternFilter, ResourceType
from kafka.net.sasl.oauth import AbstractTokenProvider

from kutil import capture_kafka_log, emit, fail, require, unsecured_jwt

WAIT_S = 20


LOG = capture_kafka_log()


class Tokens(AbstractTokenProvider):
    def __init__(self, token):
        super().__init__()
        self._token = token

    def token(self):
        return self._token


def kconf(bootstrap, sec, **extra):
    c = {
        "bootstrap_servers": bootstrap,
        "security_protocol": sec.get("protocol", "PLAINTEXT"),
        "request_timeout_ms": 10000,
        "reconnect_backoff_max_ms": 1000,
    }
    if sec.get("ca"):
        c["ssl_cafile"] = sec["ca"]
        c["ssl_check_hostname"] = True
    if sec.get("cert"):
        c["ssl_certfile"] = sec["cert"]
        c["ssl_keyfile"] = sec["key"]
    mech = sec.get("mechanism")
    if mech:
        c["sasl_mechanism"] = mech
        if mech == "OAUTHBEARER":
            c["sasl_oauth_token_provider"] = Tokens(unsecured_jwt(sec["jwt_claims"]))
        else:
            c["sasl_plain_username"] = sec["user"]
            c["sasl_plain_password"] = sec["password"]
    c.update(extra)
    return c


def error_of(e):
    """(name, code) of an exception: kafka-python's class name and the Kafka error code."""
    return type(e).__name__, getattr(e, "errno", None)


def op_roundtrip(bootstrap, sec, op):
    topic, n, tag = op["topic"], op["n"], op["tag"]
    p = KafkaProducer(**kconf(bootstrap, sec, bootstrap_timeout_ms=WAIT_S * 1000, max_block_ms=WAIT_S * 1000))
    futures = [
        p.send(topic, key=("%s-%d" % (tag, i)).encode(), value=("%s-value-%d" % (tag, i)).encode(), partition=0)
        for i in range(n)
    ]
    p.flush(timeout=WAIT_S)
    offsets, delivery_errors = [], set()
    for f in futures:
        try:
            offsets.append(f.get(timeout=WAIT_S).offset)
        except Exception as e:  # noqa: BLE001
            delivery_errors.add(error_of(e)[0])
    p.close(timeout=5)
    consumed = []
    if offsets:
        c = KafkaConsumer(**kconf(bootstrap, sec, group_id=None, enable_auto_commit=False, auto_offset_reset="none"))
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, min(offsets))
        deadline = time.time() + WAIT_S
        while time.time() < deadline and len(consumed) < len(offsets):
            for recs in c.poll(timeout_ms=200).values():
                consumed.extend(r.value.decode() for r in recs)
        c.close()
    return {"delivered": len(offsets), "delivery_errors": sorted(delivery_errors), "consumed": consumed}


def op_connect_fail(bootstrap, sec, op):
    started = time.time()
    error = code = None
    delivered = False
    try:
        p = KafkaProducer(**kconf(bootstrap, sec, bootstrap_timeout_ms=op.get("timeout_s", 10) * 1000,
                                  max_block_ms=op.get("timeout_s", 10) * 1000))
        try:
            p.send(op.get("topic", "security-connect-probe"), value=b"probe").get(timeout=op.get("timeout_s", 10))
            delivered = True
        finally:
            p.close(timeout=2)
    except Exception as e:  # noqa: BLE001
        error, code = error_of(e)
        error = error + ": " + str(e)[:300]
    return {
        "error": error,
        "code": code,
        "first_error_s": None if error is None else round(time.time() - started, 3),
        "delivered": delivered,
        "log": ["%.3f %s" % line for line in LOG.lines[-10:]],
        "expect_log_s": LOG.first(op["expect_log"]) if op.get("expect_log") else None,
    }


def op_produce(bootstrap, sec, op):
    try:
        p = KafkaProducer(**kconf(bootstrap, sec, max_block_ms=10000))
        try:
            md = p.send(op["topic"], value=op["value"].encode(), partition=op.get("partition", 0)).get(timeout=WAIT_S)
            return {"error": None, "code": None, "offset": md.offset}
        finally:
            p.close(timeout=2)
    except Exception as e:  # noqa: BLE001
        name, code = error_of(e)
        return {"error": name, "code": code, "offset": None, "message": str(e)[:300]}


def op_fetch(bootstrap, sec, op):
    values = []
    try:
        c = KafkaConsumer(**kconf(bootstrap, sec, group_id=None, enable_auto_commit=False,
                                  auto_offset_reset="earliest"))
        try:
            tp = TopicPartition(op["topic"], op.get("partition", 0))
            c.assign([tp])
            c.seek_to_beginning(tp)
            deadline = time.time() + op.get("timeout_s", 10)
            while time.time() < deadline and len(values) < op.get("expect", 1):
                for recs in c.poll(timeout_ms=200).values():
                    values.extend(r.value.decode() for r in recs)
        finally:
            c.close()
    except Exception as e:  # noqa: BLE001
        name, code = error_of(e)
        return {"error": name, "code": code, "values": values, "message": str(e)[:300]}
    return {"error": None, "code": None, "values": values}


def op_group_consume(bootstrap, sec, op):
    values, commit_error = [], None
    try:
        c = KafkaConsumer(**kconf(bootstrap, sec, group_id=op["group"], enable_auto_commit=False,
                                  auto_offset_reset="earliest", session_timeout_ms=6000,
                                  heartbeat_interval_ms=1000))
        try:
            c.subscribe([op["topic"]])
            deadline = time.time() + op.get("timeout_s", 15)
            while time.time() < deadline and len(values) < op.get("expect", 1):
                for recs in c.poll(timeout_ms=200).values():
                    values.extend(r.value.decode() for r in recs)
            if values:
                try:
                    c.commit()
                except Exception as e:  # noqa: BLE001
                    commit_error = error_of(e)[0]
        finally:
            c.close()
    except Exception as e:  # noqa: BLE001
        name, code = error_of(e)
        return {"error": name, "code": code, "values": values, "commit_error": commit_error,
                "message": str(e)[:300]}
    return {"error": None, "code": None, "values": values, "commit_error": commit_error}


def op_metadata(bootstrap, sec, op):
    try:
        a = KafkaAdminClient(**kconf(bootstrap, sec))
        try:
            return {"topics": sorted(a.list_topics())}
        finally:
            a.close()
    except Exception as e:  # noqa: BLE001
        return {"error": error_of(e)[0], "message": str(e)[:300]}


def op_describe_acls(bootstrap, sec, op):
    try:
        a = KafkaAdminClient(**kconf(bootstrap, sec))
        try:
            acl_filter = ACLFilter(
                principal=None,
                host=None,
                operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, op["topic"], ACLResourcePatternType.LITERAL),
            )
            acls, err = a.describe_acls(acl_filter)
            if err is not None and getattr(err, "errno", 0):
                return {"error": err.__name__ if isinstance(err, type) else type(err).__name__}
            return {
                "acls": sorted(
                    [acl.principal, acl.host, acl.operation.name, acl.permission_type.name,
                     acl.resource_pattern.resource_name, acl.resource_pattern.pattern_type.name]
                    for acl in acls
                )
            }
        finally:
            a.close()
    except Exception as e:  # noqa: BLE001
        return {"error": error_of(e)[0], "message": str(e)[:300]}


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def op_peer_cert(bootstrap, sec, op):
    want = fingerprint(ssl.PEM_cert_to_DER_cert(open(op["expect_cert"]).read()))
    ctx = ssl.create_default_context(cafile=op["ca"])
    ctx.check_hostname = True
    seen, first, connections, errors = [], None, 0, []
    deadline = time.time() + op.get("timeout_s", 10)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", op["port"]), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    fp = fingerprint(t.getpeercert(binary_form=True))
            connections += 1
            first = first or fp
            if fp not in seen:
                seen.append(fp)
            if fp == want:
                break
        except Exception as e:  # noqa: BLE001
            errors.append(type(e).__name__ + ": " + str(e)[:200])
        if time.time() > deadline:
            break
        time.sleep(0.05)
    return {"matched": fingerprint_in(want, seen), "want": want, "first": first, "seen": seen,
            "connections": connections, "errors": errors[-5:]}


def fingerprint_in(fp, seen):
    return bool(seen) and seen[-1] == fp


def op_raw_request(bootstrap, sec, op):
    """Sends one request frame (header v1, client id "security-probe") in plaintext and reads
    until a whole response frame arrived, the broker closed the connection or 5 s passed."""
    client_id = b"security-probe"
    body = struct.pack(">hhih", op["api_key"], op["api_version"], 7, len(client_id)) + client_id
    body += bytes.fromhex(op.get("body_hex", ""))
    got, closed = b"", False
    with socket.create_connection(("127.0.0.1", op["port"]), timeout=5) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        deadline = time.time() + 5
        try:
            while time.time() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                got += chunk
                if len(got) >= 4 and len(got) >= 4 + struct.unpack(">i", got[:4])[0]:
                    break  # one whole response frame: the connection stays open
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except socket.timeout:
            pass
    # A Kafka response starts with its size and the request's correlation id (7).
    kafka_response = len(got) >= 8 and struct.unpack(">i", got[4:8])[0] == 7
    return {"closed": closed, "response_hex": got[:32].hex(), "response_len": len(got),
            "kafka_response": kafka_response}


def op_tls_handshake(bootstrap, sec, op):
    """A TLS handshake (CA-verified, SNI localhost) limited to TLS versions, and what it
    negotiated."""
    ctx = ssl.create_default_context(cafile=op["ca"])
    if op.get("min_version"):
        ctx.minimum_version = getattr(ssl.TLSVersion, op["min_version"])
    if op.get("max_version"):
        ctx.maximum_version = getattr(ssl.TLSVersion, op["max_version"])
    try:
        with socket.create_connection(("127.0.0.1", op["port"]), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                return {"ok": True, "version": t.version(), "error": None}
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "version": None, "error": type(e).__name__ + ": " + str(e)[:200]}


def op_raw_tls_on_plain(bootstrap, sec, op):
    ctx = ssl.create_default_context(cafile=op["ca"])
    try:
        with socket.create_connection(("127.0.0.1", op["port"]), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost"):
                return {"handshake_ok": True, "error": None}
    except Exception as e:  # noqa: BLE001
        return {"handshake_ok": False, "error": type(e).__name__ + ": " + str(e)[:200]}


OPS = {
    "roundtrip": op_roundtrip,
    "connect_fail": op_connect_fail,
    "produce": op_produce,
    "fetch": op_fetch,
    "group_consume": op_group_consume,
    "metadata": op_metadata,
    "describe_acls": op_describe_acls,
    "peer_cert": op_peer_cert,
    "raw_request": op_raw_request,
    "raw_tls_on_plain": op_raw_tls_on_plain,
    "tls_handshake": op_tls_handshake,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "ops":
        fail(__doc__)
    spec = json.loads(sys.argv[2])
    results = []
    for op in spec["ops"]:
        fn = OPS.get(op["op"])
        require(fn is not None, "unknown op %r" % op["op"])
        started = time.time()
        LOG.reset()
        r = fn(op.get("bootstrap", spec.get("bootstrap")), op.get("sec", spec.get("sec", {})), op)
        r.setdefault("log", ["%.3f %s" % line for line in LOG.lines[-10:]])
        r["op"] = op["op"]
        r["elapsed_s"] = round(time.time() - started, 3)
        results.append(r)
    emit({"results": results})


if __name__ == "__main__":
    main()
