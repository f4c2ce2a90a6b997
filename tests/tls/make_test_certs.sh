#!/usr/bin/env bash
# Makes the certificates the TLS tests use, with Debian's openssl, into $1:
#   ca.pem/key            the CA the services trust
#   server.pem/key        127.0.0.1 / localhost, signed by ca (serverAuth)
#   client.pem/key        a client identity signed by ca (clientAuth, mTLS)
#   other_ca.pem/key      an unrelated CA
#   other_client.pem/key  a client signed by other_ca (must be refused)
#   other_server.pem/key  127.0.0.1 / localhost signed by other_ca (certificate reload tests)
#   expired_server.pem/key  signed by ca, notAfter a day before notBefore
set -euo pipefail
out="$1"
mkdir -p "$out"
cd "$out"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -subj "/CN=$1" -days 2 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
}
# leaf NAME CA USAGE DAYS
leaf() {
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" \
    -days "$4" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca
ca other_ca
leaf server ca serverAuth 2
leaf client ca clientAuth 2
leaf other_client other_ca clientAuth 2
leaf other_server other_ca serverAuth 2
leaf expired_server ca serverAuth -1
