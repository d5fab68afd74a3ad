#!/usr/bin/env bash
# openssl-ha.sh OUTDIR -- BASELINE ONLY, for benches/generate.rs.
#
# The same set as keytool-ha.sh, for the 11 nodes of examples/ha.toml, made with
# nothing but the openssl CLI, one command after another:
#   - a CA (ca.key, ca.pem);
#   - the shared primary keystore wso2carbon.p12 (openssl pkcs12 -export);
#   - per node a key, a CSR and a certificate signed by the CA with
#     SAN=DNS:<host>,DNS:<lb host>,DNS:localhost,IP:127.0.0.1 (from an -extfile),
#     and a PKCS#12 keystore nodes/<node>/<node>.p12;
#   - per node a truststore nodes/<node>/client-truststore.p12, a certificate-only
#     PKCS#12 (pkcs12 -export -nokeys) of the CA and the primary certificate.
#     Java does not see such entries (no trusted-key-usage attribute); this is
#     only here so that the work is timed.
# No load-balancer PEM bundles, to match keytool-ha.sh.
#
# It uses one fixed throwaway password (BENCH_STOREPASS, default below) for every
# store: it exists to be timed, not to make keystores for real use.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT=$1
mkdir -p "$OUT"
cd "$OUT"

export BENCH_STOREPASS=${BENCH_STOREPASS:-bench-changeit}
ORG="/O=Acme Corp/OU=API Platform/C=US"

# name host load-balancer-host ip ("-" for none), hard-coded from examples/ha.toml
NODES=(
    "km1    km1.acme.internal        km.acme.internal        10.0.1.11"
    "km2    km2.acme.internal        km.acme.internal        -"
    "pub1   pub1.acme.internal       publisher.acme.internal -"
    "pub2   pub2.acme.internal       publisher.acme.internal -"
    "store1 store1.acme.internal     store.acme.internal     -"
    "store2 store2.acme.internal     store.acme.internal     -"
    "tm1    tm1.acme.internal        tm.acme.internal        -"
    "tm2    tm2.acme.internal        tm.acme.internal        -"
    "gwm    gw-manager.acme.internal -                       -"
    "gw1    gw1.acme.internal        gw.acme.internal        -"
    "gw2    gw2.acme.internal        gw.acme.internal        -"
)

# 1. CA
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -sha256 \
    -subj "/CN=acme-prod CA$ORG" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# 2. primary keystore, shared by every node
openssl req -new -newkey rsa:2048 -nodes -keyout wso2carbon.key -out wso2carbon.csr \
    -subj "/CN=acme-prod primary$ORG" 2>/dev/null
openssl x509 -req -in wso2carbon.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days 3650 -sha256 -out wso2carbon.pem 2>/dev/null
openssl pkcs12 -export -name wso2carbon -inkey wso2carbon.key -in wso2carbon.pem -certfile ca.pem \
    -out wso2carbon.p12 -passout env:BENCH_STOREPASS

# 3. per node: key, CSR, certificate, keystore and truststore
for line in "${NODES[@]}"; do
    read -r name host lb ip <<<"$line"
    dir=nodes/$name
    mkdir -p "$dir"
    san="DNS:$host"
    [[ $lb != "-" ]] && san="$san,DNS:$lb"
    san="$san,DNS:localhost,IP:127.0.0.1"
    [[ $ip != "-" ]] && san="$san,IP:$ip"
    cat >"$dir/ext.cnf" <<EXT
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = $san
EXT

    openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$name.key" -out "$dir/$name.csr" \
        -subj "/CN=$host$ORG" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA ca.pem -CAkey ca.key \
        -set_serial "0x$(openssl rand -hex 16)" -days 397 -sha256 \
        -extfile "$dir/ext.cnf" -out "$dir/$name.pem" 2>/dev/null
    openssl pkcs12 -export -name "$name" -inkey "$dir/$name.key" -in "$dir/$name.pem" -certfile ca.pem \
        -out "$dir/$name.p12" -passout env:BENCH_STOREPASS

    cat ca.pem wso2carbon.pem >"$dir/trust.pem"
    openssl pkcs12 -export -nokeys -in "$dir/trust.pem" -out "$dir/client-truststore.p12" \
        -passout env:BENCH_STOREPASS
done
