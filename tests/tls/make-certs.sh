#!/usr/bin/env bash
# Makes the x509 certificates of the pull-over-TLS tests, offline, with openssl:
#   OUT/server/         ca-cert.pem server-cert.pem server-key.pem dh-params.pem
#                       (the folder backup_tls_x509_cert_dir names: QEMU's tls-creds-x509)
#   OUT/client/         ca-cert.pem client-cert.pem client-key.pem (libnbd's tls-certificates)
#   OUT/client-no-cert/ ca-cert.pem only: trusts the server, has no certificate to show
#   OUT/stranger/       trusts the server, but its certificate is signed by another CA
#   OUT/wrong-ca/       trusts only the other CA: must refuse the server
# The server certificate names localhost, this host and 127.0.0.1.
#
# Usage: tests/tls/make-certs.sh OUT
set -euo pipefail
out=${1:?usage: make-certs.sh OUT}
mkdir -p "$out"/{ca,other-ca,server,client,client-no-cert,stranger,wrong-ca}
cd "$out"

ca() { # folder, common name
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$1/ca-key.pem" -out "$1/ca-cert.pem" \
    -subj "/O=virbackup test/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() { # ca folder, output prefix, common name, extensions file
  openssl req -new -newkey rsa:2048 -nodes -keyout "$2-key.pem" -out "$2.csr" -subj "/O=virbackup test/CN=$3" 2>/dev/null
  openssl x509 -req -in "$2.csr" -CA "$1/ca-cert.pem" -CAkey "$1/ca-key.pem" -CAcreateserial -days 3650 \
    -out "$2-cert.pem" -extfile "$4" 2>/dev/null
  rm -f "$2.csr"
}

ca ca "virbackup test CA"
ca other-ca "another CA"
cat >server.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:$(hostname),IP:127.0.0.1
EXT
cat >client.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EXT
leaf ca server/server "$(hostname)" server.ext
leaf ca client/client "virbackup client" client.ext
leaf other-ca stranger/client "stranger" client.ext
for d in server client client-no-cert stranger; do cp ca/ca-cert.pem "$d/"; done
cp other-ca/ca-cert.pem wrong-ca/
# Without it, QEMU makes Diffie-Hellman parameters when the credentials are added.
openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out server/dh-params.pem 2>/dev/null
rm -f server.ext client.ext ca/*.srl other-ca/*.srl
chmod 600 ./*/*-key.pem
