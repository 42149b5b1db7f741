#!/usr/bin/env python3
"""librdkafka (confluent-kafka) against a Strom broker's secured listeners: TLS, SASL, ACLs.

Usage: security_ck.py ops JSON
       security_ck.py reauth JSON

ops: JSON is {"bootstrap": HOST:PORT, "sec": SEC, "ops": [OP, ...]}. Each OP is an object
  with "op" (below) and its parameters; it may carry its own "bootstrap" and "sec". The ops
  run in order and the script prints {"results": [RESULT, ...]}, one result per op, each
  with "elapsed_s". An expected failure (an authorization error, a refused login) is a
  result, not a script failure: the Rust test asserts on the error names and codes.

  SEC says how to connect: {"protocol": PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL,
  "ca": PEM (verify the broker against it; hostname checked), "cert"/"key": client
  certificate PEM files, "mechanism": PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|OAUTHBEARER,
  "user"/"password", "oauth_config": librdkafka's sasl.oauthbearer.config for its built-in
  unsecured JWT builder, or "jwt_claims": claims of an unsecured JWT (alg none) an oauth_cb
  hands over as is; "exp_in_s" there becomes "exp": now + exp_in_s, "iat" is added}.

  create_topics {topics: [[name, partitions], ...], wait} -> {errors: {name: null|ERROR_NAME}}
  alter_users {upserts: [{user, password, mechanism, iterations}], deletions: [{user, mechanism}]}
                                                        -> {errors: {user: null|ERROR_NAME}}
  describe_users {users: [name, ...]}                   -> {users: {name: [[MECH, iterations]] | ERROR_NAME}}
  create_acls {acls: [ACL, ...]}                        -> {errors: [null|ERROR_NAME, ...]}
  describe_acls {filter: ACL with nulls/ANY}            -> {acls: [ACL, ...] sorted} | {error}
  delete_acls {filters: [ACL, ...]}                     -> {deleted: [[ACL, ...] | ERROR_NAME, ...]}
  metadata                                              -> {topics: [names], brokers: [host:port]} | {error}
  delete_topics {topics: [name, ...]}                   -> {errors: {name: null|ERROR_NAME}}
  describe_configs {topic}                              -> {error, retention.ms}
  list_groups                                           -> {error, groups: [id, ...]}
  describe_groups {groups: [id, ...]}                   -> {groups: {id: {error, state}}}
  metadata_topic {topic}                                -> {error: null|ERROR_NAME, partitions}
  produce {topic, value}                                -> {error: null|ERROR_NAME, offset}
  fetch {topic, expect}                                 -> {error: null|ERROR_NAME, values}
  group_consume {topic, group, expect}                  -> {error, values, commit_error}
  roundtrip {topic, n, tag}                             -> {delivered, delivery_errors, consumed, errors}
  connect_fail {}                                       -> {first_error_s, errors, delivered}
      a producer sends one record and waits for the first error the client reports (a
      refused login, a failed handshake); "delivered" says whether the record got through.

  ACL: {restype: TOPIC|GROUP|BROKER, name, pattern: LITERAL|PREFIXED, principal, host,
        operation: READ|WRITE|..., permission: ALLOW|DENY}

reauth: JSON is {"internal": HOST:PORT (PLAINTEXT, for the producer), "bootstrap": HOST:PORT,
  "sec": SEC, "topic", "seconds"}. A producer on the internal listener writes a record every
  100 ms while a consumer on the secured listener (assigned, from the end) reads for
  "seconds"; prints the records received per second, librdkafka's log lines about
  (re-)authentication and the errors it reported.
"""

import json
import logging
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AdminClient,
    ConfigResource,
    NewTopic,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from kutil import emit, fail, require, unsecured_jwt

WAIT_S = 20  # upper bound of every wait in this script (a broken broker must not hang it)


def outcomes(futures):
    """{key: None, or the error name} for a dict of AdminClient futures."""
    out = {}
    for key, f in futures.items():
        try:
            f.result(timeout=WAIT_S)
            out[key] = None
        except Exception as e:  # noqa: BLE001
            out[key] = err_name(e)
    return out


def err_name(e):
    """ERROR_NAME of a KafkaError, a KafkaException or another exception."""
    if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
        e = e.args[0]
    if isinstance(e, KafkaError):
        return e.name()
    return type(e).__name__ + ": " + str(e)


def err_dict(e):
    if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
        e = e.args[0]
    if isinstance(e, KafkaError):
        return {"name": e.name(), "code": e.code(), "str": e.str()}
    return {"name": type(e).__name__, "code": None, "str": str(e)}


def conf(bootstrap, sec, errors=None, **extra):
    """librdkafka settings for SEC (see the module doc); errors collects error_cb's reports."""
    c = {
        "bootstrap.servers": bootstrap,
        "security.protocol": sec.get("protocol", "PLAINTEXT"),
        "socket.timeout.ms": 10000,
        "reconnect.backoff.max.ms": 1000,
    }
    if sec.get("ca"):
        c["ssl.ca.location"] = sec["ca"]
        c["ssl.endpoint.identification.algorithm"] = "https"
    if sec.get("cert"):
        c["ssl.certificate.location"] = sec["cert"]
        c["ssl.key.location"] = sec["key"]
    mech = sec.get("mechanism")
    if mech:
        c["sasl.mechanism"] = mech
        if mech == "OAUTHBEARER":
            if "jwt_claims" in sec:
                # librdkafka hands this token over as is; its own expiry is an hour away
                # whatever the token's "exp" claim says, so the broker must check the claim.
                token, principal = unsecured_jwt(sec["jwt_claims"]), sec.get("user", "unknown")
                c["oauth_cb"] = lambda _cfg: (token, time.time() + 3600, principal, {})
            else:
                c["enable.sasl.oauthbearer.unsecure.jwt"] = True
                c["sasl.oauthbearer.config"] = sec.get("oauth_config", "principal=" + sec.get("user", ""))
        else:
            c["sasl.username"] = sec["user"]
            c["sasl.password"] = sec["password"]
    if errors is not None:
        started = time.time()

        def on_error(e):
            if len(errors) < 30:  # a client retrying for seconds reports the same thing often
                d = err_dict(e)
                d["at_s"] = round(time.time() - started, 3)
                errors.append(d)

        c["error_cb"] = on_error
    c.update(extra)
    return c


def admin_client(bootstrap, sec):
    a = AdminClient(conf(bootstrap, sec))
    a.poll(0)  # serves an oauth_cb, if any
    return a


def acl_binding(d, cls=AclBinding):
    return cls(
        d.get("restype", "ANY"),
        d.get("name"),
        d.get("pattern", "ANY" if cls is AclBindingFilter else "LITERAL"),
        d.get("principal"),
        d.get("host", None if cls is AclBindingFilter else "*"),
        d.get("operation", "ANY"),
        d.get("permission", "ANY"),
    )


def acl_dict(b):
    return {
        "restype": b.restype.name,
        "name": b.name,
        "pattern": b.resource_pattern_type.name,
        "principal": b.principal,
        "host": b.host,
        "operation": b.operation.name,
        "permission": b.permission_type.name,
    }


def sorted_acls(bindings):
    return sorted((acl_dict(b) for b in bindings), key=lambda d: json.dumps(d, sort_keys=True))


# ------------------------------------------------------------------ admin ops


def op_create_topics(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    topics = [NewTopic(name, num_partitions=parts, replication_factor=1) for name, parts in op["topics"]]
    errors = outcomes(a.create_topics(topics, operation_timeout=10, request_timeout=WAIT_S))
    # Created topics must show in metadata before the next op uses them (unless the creator
    # may not describe them: "wait": false).
    want = {name for name, err in errors.items() if err is None} if op.get("wait", True) else set()
    deadline = time.time() + WAIT_S
    while want:
        md = a.list_topics(timeout=10)
        want = {t for t in want if t not in md.topics or md.topics[t].error is not None}
        if want and time.time() > deadline:
            fail("topics %s not in metadata %ds after create" % (sorted(want), WAIT_S))
        if want:
            time.sleep(0.1)
    return {"errors": errors}


def op_alter_users(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    alterations = []
    for u in op.get("upserts", []):
        info = ScramCredentialInfo(ScramMechanism[u["mechanism"].replace("-", "_")], u.get("iterations", 4096))
        alterations.append(UserScramCredentialUpsertion(u["user"], info, u["password"].encode()))
    for u in op.get("deletions", []):
        alterations.append(UserScramCredentialDeletion(u["user"], ScramMechanism[u["mechanism"].replace("-", "_")]))
    errors = outcomes(a.alter_user_scram_credentials(alterations, request_timeout=WAIT_S))
    return {"errors": errors}


def op_describe_users(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    users = {}
    for user, f in a.describe_user_scram_credentials(op["users"], request_timeout=WAIT_S).items():
        try:
            d = f.result(timeout=WAIT_S)
            users[user] = sorted(
                [i.mechanism.name.replace("_", "-"), i.iterations] for i in d.scram_credential_infos
            )
        except Exception as e:  # noqa: BLE001
            users[user] = err_name(e)
    return {"users": users}


def op_create_acls(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    bindings = [acl_binding(d) for d in op["acls"]]
    futures = a.create_acls(bindings, request_timeout=WAIT_S)
    errors = []
    for b in bindings:
        try:
            futures[b].result(timeout=WAIT_S)
            errors.append(None)
        except Exception as e:  # noqa: BLE001
            errors.append(err_name(e))
    return {"errors": errors}


def op_describe_acls(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    try:
        found = a.describe_acls(acl_binding(op["filter"], AclBindingFilter), request_timeout=WAIT_S).result(
            timeout=WAIT_S
        )
    except Exception as e:  # noqa: BLE001
        return {"error": err_name(e)}
    return {"acls": sorted_acls(found)}


def op_delete_acls(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    filters = [acl_binding(d, AclBindingFilter) for d in op["filters"]]
    futures = a.delete_acls(filters, request_timeout=WAIT_S)
    deleted = []
    for f in filters:
        try:
            deleted.append(sorted_acls(futures[f].result(timeout=WAIT_S)))
        except Exception as e:  # noqa: BLE001
            deleted.append(err_name(e))
    return {"deleted": deleted}


def op_metadata(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    try:
        md = a.list_topics(timeout=10)
    except Exception as e:  # noqa: BLE001
        return {"error": err_name(e)}
    return {
        "topics": sorted(md.topics),
        "brokers": sorted("%s:%d" % (b.host, b.port) for b in md.brokers.values()),
    }


def op_metadata_topic(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    try:
        md = a.list_topics(topic=op["topic"], timeout=10)
    except Exception as e:  # noqa: BLE001
        return {"error": err_name(e), "partitions": None}
    t = md.topics.get(op["topic"])
    if t is None:
        return {"error": "MISSING", "partitions": None}
    return {"error": None if t.error is None else t.error.name(), "partitions": len(t.partitions)}


def op_delete_topics(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    errors = outcomes(a.delete_topics(op["topics"], operation_timeout=10, request_timeout=WAIT_S))
    return {"errors": errors}


def op_describe_configs(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    res = ConfigResource(ConfigResource.Type.TOPIC, op["topic"])
    try:
        configs = a.describe_configs([res], request_timeout=WAIT_S)[res].result(timeout=WAIT_S)
    except Exception as e:  # noqa: BLE001
        return {"error": err_name(e)}
    return {"error": None, "retention.ms": configs["retention.ms"].value if "retention.ms" in configs else None}


def op_list_groups(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    try:
        result = a.list_consumer_groups(request_timeout=WAIT_S).result(timeout=WAIT_S)
    except Exception as e:  # noqa: BLE001
        return {"error": err_name(e)}
    return {"error": None, "groups": sorted(g.group_id for g in result.valid),
            "group_errors": [str(e) for e in result.errors]}


def op_describe_groups(bootstrap, sec, op):
    a = admin_client(bootstrap, sec)
    out = {}
    for group, f in a.describe_consumer_groups(op["groups"], request_timeout=WAIT_S).items():
        try:
            d = f.result(timeout=WAIT_S)
            out[group] = {"error": None, "state": str(d.state)}
        except Exception as e:  # noqa: BLE001
            out[group] = {"error": err_name(e)}
    return {"groups": out}


# ------------------------------------------------------------------ data ops


def is_group_lookup_error(err):
    """librdkafka looks up the coordinator of its group.id (which confluent-kafka requires)
    even when partitions are assigned by hand; with ACLs on, a principal without DESCRIBE
    on that group gets GROUP_AUTHORIZATION_FAILED from FindCoordinator, as from Kafka. The
    assigned partitions are fetched regardless, so group-less reads ignore it."""
    return err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def op_produce(bootstrap, sec, op):
    errors = []
    p = Producer(conf(bootstrap, sec, errors, **{"message.timeout.ms": 8000, "acks": "all"}))
    report = {}

    def on_delivery(err, msg):
        report["error"] = None if err is None else err.name()
        report["offset"] = None if err is not None else msg.offset()

    p.produce(op["topic"], value=op["value"].encode(), partition=op.get("partition", 0), on_delivery=on_delivery)
    left = p.flush(WAIT_S)
    if left:
        return {"error": "NOT_DELIVERED_IN_TIME", "offset": None, "client_errors": errors}
    report["client_errors"] = errors
    return report


def op_fetch(bootstrap, sec, op):
    """Reads partition 0 of a topic from the beginning (no group coordination: assign)."""
    errors = []
    c = Consumer(
        conf(
            bootstrap,
            sec,
            errors,
            **{
                "group.id": "security-fetch-assigned",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
            },
        )
    )
    c.assign([TopicPartition(op["topic"], op.get("partition", 0), OFFSET_BEGINNING)])
    values, error, group_errors = [], None, []
    deadline = time.time() + op.get("timeout_s", 10)
    while time.time() < deadline and len(values) < op.get("expect", 1):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if is_group_lookup_error(m.error()):
                group_errors.append(m.error().name())
                continue
            error = m.error().name()
            break
        values.append(m.value().decode())
    c.close()
    return {"error": error, "values": values, "client_errors": errors, "group_errors": sorted(set(group_errors))}


def op_group_consume(bootstrap, sec, op):
    """A group member (subscribe) reading a topic from the earliest offset, then committing."""
    errors = []
    c = Consumer(
        conf(
            bootstrap,
            sec,
            errors,
            **{
                "group.id": op["group"],
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
            },
        )
    )
    c.subscribe([op["topic"]])
    values, error, commit_error = [], None, None
    deadline = time.time() + op.get("timeout_s", 15)
    while time.time() < deadline and len(values) < op.get("expect", 1):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            error = m.error().name()
            break
        values.append(m.value().decode())
    if values:
        try:
            c.commit(asynchronous=False)
        except Exception as e:  # noqa: BLE001
            commit_error = err_name(e)
    c.close()
    return {"error": error, "values": values, "commit_error": commit_error, "client_errors": errors}


def op_roundtrip(bootstrap, sec, op):
    """Produces n records tagged with a tag to partition 0 and reads them back."""
    topic, n, tag = op["topic"], op["n"], op["tag"]
    errors = []
    p = Producer(conf(bootstrap, sec, errors, **{"message.timeout.ms": 10000, "acks": "all"}))
    reports = []

    def on_delivery(err, msg):
        reports.append({"error": None if err is None else err.name(), "offset": msg.offset()})

    for i in range(n):
        p.produce(topic, key=("%s-%d" % (tag, i)).encode(), value=("%s-value-%d" % (tag, i)).encode(), partition=0,
                  on_delivery=on_delivery)
    p.flush(WAIT_S)
    delivered = [r["offset"] for r in reports if r["error"] is None]
    delivery_errors = sorted({r["error"] for r in reports if r["error"] is not None})
    consumed = []
    if delivered:
        c = Consumer(
            conf(
                bootstrap,
                sec,
                errors,
                **{
                    "group.id": "security-roundtrip-assigned",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "error",
                },
            )
        )
        c.assign([TopicPartition(topic, 0, min(delivered))])
        deadline = time.time() + WAIT_S
        while time.time() < deadline and len(consumed) < len(delivered):
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if is_group_lookup_error(m.error()):
                    continue
                consumed.append("ERROR:" + m.error().name())
                break
            consumed.append(m.value().decode())
        c.close()
    return {"delivered": len(delivered), "delivery_errors": delivery_errors, "consumed": consumed, "errors": errors}


def op_connect_fail(bootstrap, sec, op):
    """Waits for the first error the client reports while trying to send one record."""
    errors = []
    started = time.time()
    p = Producer(conf(bootstrap, sec, errors, **{"message.timeout.ms": 10000}))
    delivered = {}

    def on_delivery(err, msg):
        delivered["error"] = None if err is None else err.name()

    p.produce(op.get("topic", "security-connect-probe"), value=b"probe", on_delivery=on_delivery)
    first = None
    deadline = started + op.get("timeout_s", 12)
    while time.time() < deadline:
        p.poll(0.05)
        if errors and first is None:
            first = time.time() - started
            # Keep listening briefly: a refused login may be followed by more reports.
            deadline = min(deadline, time.time() + 0.5)
        if delivered.get("error", "x") is None:
            break
    p.purge()
    p.flush(1)
    return {
        "first_error_s": None if first is None else round(first, 3),
        "errors": errors,
        "delivered": delivered.get("error", "x") is None,
    }


OPS = {
    "create_topics": op_create_topics,
    "alter_users": op_alter_users,
    "describe_users": op_describe_users,
    "create_acls": op_create_acls,
    "describe_acls": op_describe_acls,
    "delete_acls": op_delete_acls,
    "metadata": op_metadata,
    "delete_topics": op_delete_topics,
    "describe_configs": op_describe_configs,
    "list_groups": op_list_groups,
    "describe_groups": op_describe_groups,
    "metadata_topic": op_metadata_topic,
    "produce": op_produce,
    "fetch": op_fetch,
    "group_consume": op_group_consume,
    "roundtrip": op_roundtrip,
    "connect_fail": op_connect_fail,
}


def run_ops(spec):
    results = []
    for op in spec["ops"]:
        fn = OPS.get(op["op"])
        require(fn is not None, "unknown op %r" % op["op"])
        started = time.time()
        r = fn(op.get("bootstrap", spec.get("bootstrap")), op.get("sec", spec.get("sec", {})), op)
        r["op"] = op["op"]
        r["elapsed_s"] = round(time.time() - started, 3)
        results.append(r)
    emit({"results": results})


# ------------------------------------------------------------------ re-authentication


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append("%.3f %s" % (time.time(), record.getMessage()))


def reauth(spec):
    topic, seconds = spec["topic"], spec["seconds"]
    stop = threading.Event()
    produced = []

    def produce_loop():
        p = Producer({"bootstrap.servers": spec["internal"], "linger.ms": 0})
        i = 0
        while not stop.is_set():
            p.produce(topic, value=b"tick-%d" % i, partition=0)
            produced.append(i)
            p.poll(0)
            i += 1
            time.sleep(0.1)
        p.flush(10)

    lines = Lines()
    logger = logging.getLogger("librdkafka-reauth")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(lines)
    errors = []
    c = Consumer(
        conf(
            spec["bootstrap"],
            spec["sec"],
            errors,
            **{
                "group.id": "security-reauth-assigned",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "error",
                "debug": "security,broker",
                "logger": logger,
            },
        )
    )
    # The end offset (a ListOffsets over the secured listener) is where reading starts.
    _, end = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=WAIT_S)
    c.assign([TopicPartition(topic, 0, end)])
    producer = threading.Thread(target=produce_loop, daemon=True)
    producer.start()
    started = time.time()
    per_second = [0] * seconds
    values = []
    while time.time() - started < seconds:
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            if not is_group_lookup_error(m.error()):
                errors.append(dict(err_dict(m.error()), at_s=round(time.time() - started, 3)))
            continue
        sec_i = int(time.time() - started)
        if sec_i < seconds:
            per_second[sec_i] += 1
        values.append(m.value().decode())
    stop.set()
    producer.join(15)
    c.close()
    auth_lines = [l for l in lines.lines if "reauth" in l.lower() or "authenticat" in l.lower()]
    emit(
        {
            "per_second": per_second,
            "received": len(values),
            "produced": len(produced),
            "in_order": values == ["tick-%d" % i for i in range(len(values))],
            # librdkafka starts re-authenticating a connection on its own timer, set from
            # the session lifetime the broker reported (KIP-368).
            "reauth_starts": [l for l in lines.lines if "Received REAUTH op" in l],
            "authenticated": [l for l in lines.lines if "Authenticated as" in l],
            "auth_lines": auth_lines[-20:],
            "disconnect_lines": [l for l in lines.lines if "disconnect" in l.lower()][-20:],
            "errors": errors,
        }
    )


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    spec = json.loads(sys.argv[2])
    if sys.argv[1] == "ops":
        run_ops(spec)
    elif sys.argv[1] == "reauth":
        reauth(spec)
    else:
        fail("unknown scenario %r" % sys.argv[1])


if __name__ == "__main__":
    main()
