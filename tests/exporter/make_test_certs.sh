#!/usr/bin/env bash
# Makes the certificates of the exporter's TLS tests in DIR, with the `openssl` command:
#   ca.crt / ca.key                 a test CA
#   server.crt / server.key         the exporter's, signed by the CA (127.0.0.1, ::1, localhost)
#   client.crt / client.key         a scraper's, signed by the CA (clientAuth)
#   rogue-ca.crt / rogue-ca.key     another CA
#   rogue-client.crt / .key         a scraper's, signed by the other CA
# EC P-256 keys, valid for 2 days: nothing here is a secret worth keeping.
# Usage: make_test_certs.sh DIR
set -euo pipefail
dir=${1:?usage: make_test_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # ca NAME CN
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

leaf() {  # leaf NAME CN CA EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -out "$1.crt" \
    -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca spindle-test-ca
ca rogue-ca spindle-rogue-ca
leaf server 127.0.0.1 ca "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
extendedKeyUsage=serverAuth
basicConstraints=CA:FALSE"
leaf client prometheus ca "extendedKeyUsage=clientAuth
basicConstraints=CA:FALSE"
leaf rogue-client prometheus rogue-ca "extendedKeyUsage=clientAuth
basicConstraints=CA:FALSE"
chmod 600 ./*.key
