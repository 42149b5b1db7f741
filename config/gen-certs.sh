#!/usr/bin/env bash
# Makes the certificates a TLS-enabled Strom broker and its test clients use, with openssl:
#
#   ca.pem, ca-key.pem          a test certificate authority (the truststore of broker and clients)
#   broker.pem                  the broker's keystore: certificate chain (broker, CA) then its
#                               unencrypted PKCS#8 private key, in one PEM file (Kafka's
#                               ssl.keystore.type=PEM layout; ssl.keystore.location points here)
#   broker-cert.pem, broker-key.pem   the same certificate and key as separate files
#   broker2.pem, broker2-cert.pem, broker2-key.pem   a second broker certificate from the same CA
#                               (to rotate to without a restart)
#   alice.pem, alice-key.pem    client certificate CN=alice,OU=test,O=Strom (principal
#                               User:CN=alice,OU=test,O=Strom)
#   bob.pem, bob-key.pem        client certificate CN=bob,OU=test,O=Strom
#
# The broker certificates are valid for localhost and 127.0.0.1 (subject alternative names);
# every key is EC P-256. Usage: config/gen-certs.sh DIR. Idempotent: files already in DIR
# are kept (a missing certificate is made with the existing CA). Quiet unless it fails.
# For production, use certificates from your own CA with the broker's real hostnames.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir="$1"
mkdir -p "$dir"
cd "$dir"
umask 077
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl not found (apt-get install openssl)" >&2; exit 1; }

DAYS=3650
work="$(mktemp -d "${TMPDIR:-/tmp}/strom-gen-certs.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# run CMD...: runs quietly, shows openssl's output only when it fails.
run() {
  if ! "$@" >"$work/out" 2>&1; then
    echo "$0: failed: $*" >&2
    cat "$work/out" >&2
    exit 1
  fi
}

newkey() { # FILE: an unencrypted PKCS#8 EC P-256 private key
  run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.tmp"
  mv "$1.tmp" "$1"
}

serial() { echo "0x$(openssl rand -hex 16)"; }

# The CA: self-signed, may sign certificates but not be one.
if [ ! -s ca.pem ] || [ ! -s ca-key.pem ]; then
  newkey ca-key.pem
  run openssl req -new -x509 -key ca-key.pem -sha256 -days "$DAYS" -set_serial "$(serial)" \
    -subj "/O=Strom/OU=test/CN=Strom Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out ca.pem.tmp
  mv ca.pem.tmp ca.pem
  # Certificates of an older CA would not verify against the new one.
  rm -f broker.pem broker-cert.pem broker-key.pem broker2.pem broker2-cert.pem broker2-key.pem \
    alice.pem alice-key.pem bob.pem bob-key.pem
fi

# leaf NAME SUBJECT EXTENSIONS: NAME-key.pem and a certificate signed by the CA.
leaf() {
  local name="$1" subject="$2" ext="$3" cert="$4"
  newkey "$name-key.pem"
  run openssl req -new -key "$name-key.pem" -subj "$subject" -out "$work/$name.csr"
  printf '%s\n' "$ext" >"$work/$name.ext"
  run openssl x509 -req -in "$work/$name.csr" -CA ca.pem -CAkey ca-key.pem -set_serial "$(serial)" \
    -sha256 -days "$DAYS" -extfile "$work/$name.ext" -out "$cert.tmp"
  mv "$cert.tmp" "$cert"
}

SERVER_EXT="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
CLIENT_EXT="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"

# Broker certificates: NAME-cert.pem, NAME-key.pem and the keystore NAME.pem (chain + key).
for b in broker broker2; do
  if [ ! -s "$b.pem" ] || [ ! -s "$b-cert.pem" ] || [ ! -s "$b-key.pem" ]; then
    leaf "$b" "/O=Strom/OU=test/CN=localhost" "$SERVER_EXT" "$b-cert.pem"
    cat "$b-cert.pem" ca.pem "$b-key.pem" >"$b.pem.tmp"
    mv "$b.pem.tmp" "$b.pem"
  fi
done

# Client certificates: the subject's RFC 2253 form is CN=NAME,OU=test,O=Strom.
for c in alice bob; do
  if [ ! -s "$c.pem" ] || [ ! -s "$c-key.pem" ]; then
    leaf "$c" "/O=Strom/OU=test/CN=$c" "$CLIENT_EXT" "$c.pem"
  fi
done

# Certificates are public; keys stay private to their owner.
chmod 644 ca.pem broker-cert.pem broker2-cert.pem alice.pem bob.pem
chmod 600 ca-key.pem broker.pem broker2.pem broker-key.pem broker2-key.pem alice-key.pem bob-key.pem
