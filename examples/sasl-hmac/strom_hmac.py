"""Client side of Strom's STROM-HMAC-SHA256 SASL mechanism for kafka-python (3.0.x).

The mechanism runs in the broker as the WASM plugin `hmac-challenge` (plugins/hmac-challenge)
and checks a challenge/response against the user's SCRAM-SHA-256 credential:

1. client -> broker: the user name (UTF-8)
2. broker -> client: {"salt": base64, "iterations": n, "nonce": base64}
3. client -> broker: hex(HMAC-SHA256(StoredKey, nonce)), where
   SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations),
   ClientKey = HMAC-SHA256(SaltedPassword, "Client Key"), StoredKey = SHA-256(ClientKey)

Importing this module registers the mechanism; then use it like any other:

    import strom_hmac  # noqa: F401  (registers STROM-HMAC-SHA256)
    from kafka import KafkaProducer
    KafkaProducer(bootstrap_servers=..., security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism="STROM-HMAC-SHA256",
                  sasl_plain_username="alice", sasl_plain_password="alice-secret")
"""

import base64
import hashlib
import hmac
import json
import logging

from kafka.errors import KafkaConfigurationError, SaslAuthenticationFailedError
from kafka.net.sasl import SASL_MECHANISMS, register_sasl_mechanism
from kafka.net.sasl.abc import SaslMechanism

MECHANISM = "STROM-HMAC-SHA256"

log = logging.getLogger(__name__)


def proof(password, challenge):
    """The client-final message for a server challenge (bytes of JSON)."""
    try:
        fields = json.loads(challenge)
        salt = base64.b64decode(fields["salt"], validate=True)
        nonce = base64.b64decode(fields["nonce"], validate=True)
        iterations = int(fields["iterations"])
    except (ValueError, KeyError, TypeError) as e:
        raise SaslAuthenticationFailedError(
            "%s: the broker's challenge is not {salt, iterations, nonce} JSON: %r (%s)" % (MECHANISM, challenge, e))
    if iterations < 1:
        raise SaslAuthenticationFailedError("%s: bad iteration count %d in the challenge" % (MECHANISM, iterations))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    return hmac.new(stored_key, nonce, hashlib.sha256).hexdigest().encode("ascii")


class SaslMechanismStromHmac(SaslMechanism):
    """kafka-python's SASL mechanism interface: auth_bytes() -> receive() until is_done()."""

    def __init__(self, **config):
        if not config.get("sasl_plain_username"):
            raise KafkaConfigurationError("sasl_plain_username required for %s" % MECHANISM)
        if not config.get("sasl_plain_password"):
            raise KafkaConfigurationError("sasl_plain_password required for %s" % MECHANISM)
        self.username = config["sasl_plain_username"]
        self._password = config["sasl_plain_password"]
        self._state = 0  # 0: send the user name; 1: send the proof; 2: done
        self._proof = None

    def auth_bytes(self):
        if self._state == 0:
            return self.username.encode("utf-8")
        if self._state == 1:
            return self._proof
        raise ValueError("%s: no message to send in state %d" % (MECHANISM, self._state))

    def receive(self, auth_bytes):
        if self._state == 0:
            self._proof = proof(self._password, auth_bytes)
        elif self._state != 1:
            raise ValueError("%s: unexpected message in state %d" % (MECHANISM, self._state))
        # After the proof the broker answers with an error (raised by kafka-python before
        # this is called) or with success and an empty message.
        self._state += 1
        return self.is_done()

    def is_done(self):
        return self._state == 2

    def is_authenticated(self):
        return self._state == 2

    def auth_details(self):
        return "Authenticated as %s via SASL / %s" % (self.username, MECHANISM)


if MECHANISM not in SASL_MECHANISMS:
    register_sasl_mechanism(MECHANISM, SaslMechanismStromHmac)
