#!/usr/bin/env bash
# keytool-ha.sh OUTDIR -- BASELINE ONLY, for benches/generate.rs.
#
# The "equivalent keytool-only script": what operators do by hand today to get
# the keystores of examples/ha.toml (11 nodes) with nothing but the JDK's keytool,
# one command after another:
#   - a CA key pair (ca.jks, -ext bc:c) and its certificate ca.pem;
#   - the shared primary keystore wso2carbon.jks (genkeypair, certreq, gencert by
#     the CA, import CA + signed reply);
#   - per node a TLS keystore nodes/<node>/<node>.jks with
#     SAN=dns:<host>,dns:<lb host>,dns:localhost,ip:127.0.0.1[,ip:<ip>] signed by the CA;
#   - per node a truststore nodes/<node>/client-truststore.jks holding the CA and
#     the primary certificate (as wso2carbon and gateway_certificate_alias).
# No load-balancer PEM bundles: keytool cannot export a private key as PEM.
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
PW=(-storepass:env BENCH_STOREPASS -keypass:env BENCH_STOREPASS)
SPW=(-storepass:env BENCH_STOREPASS)
KT=(keytool -noprompt -storetype JKS)
ORG="O=Acme Corp,OU=API Platform,C=US"

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
"${KT[@]}" -genkeypair -keystore ca.jks "${PW[@]}" -alias ca -keyalg RSA -keysize 2048 \
    -dname "CN=acme-prod CA,$ORG" -validity 3650 -ext bc:c -ext ku:c=keyCertSign,cRLSign
"${KT[@]}" -exportcert -keystore ca.jks "${SPW[@]}" -alias ca -rfc -file ca.pem

# 2. primary keystore, shared by every node
"${KT[@]}" -genkeypair -keystore wso2carbon.jks "${PW[@]}" -alias wso2carbon -keyalg RSA -keysize 2048 \
    -dname "CN=acme-prod primary,$ORG" -validity 3650
"${KT[@]}" -certreq -keystore wso2carbon.jks "${PW[@]}" -alias wso2carbon -file wso2carbon.csr
"${KT[@]}" -gencert -keystore ca.jks "${PW[@]}" -alias ca -infile wso2carbon.csr -outfile wso2carbon.pem \
    -rfc -validity 3650
"${KT[@]}" -importcert -keystore wso2carbon.jks "${SPW[@]}" -alias ca -file ca.pem
"${KT[@]}" -importcert -keystore wso2carbon.jks "${PW[@]}" -alias wso2carbon -file wso2carbon.pem

# 3. per node: TLS keystore and truststore
for line in "${NODES[@]}"; do
    read -r name host lb ip <<<"$line"
    dir=nodes/$name
    mkdir -p "$dir"
    san="dns:$host"
    [[ $lb != "-" ]] && san="$san,dns:$lb"
    san="$san,dns:localhost,ip:127.0.0.1"
    [[ $ip != "-" ]] && san="$san,ip:$ip"

    ks=$dir/$name.jks
    "${KT[@]}" -genkeypair -keystore "$ks" "${PW[@]}" -alias "$name" -keyalg RSA -keysize 2048 \
        -dname "CN=$host,$ORG" -validity 397 -ext "SAN=$san"
    "${KT[@]}" -certreq -keystore "$ks" "${PW[@]}" -alias "$name" -file "$dir/$name.csr"
    "${KT[@]}" -gencert -keystore ca.jks "${PW[@]}" -alias ca -infile "$dir/$name.csr" \
        -outfile "$dir/$name.pem" -rfc -validity 397 -ext "SAN=$san" \
        -ext ku:c=digitalSignature,keyEncipherment -ext eku=serverAuth,clientAuth
    "${KT[@]}" -importcert -keystore "$ks" "${SPW[@]}" -alias ca -file ca.pem
    "${KT[@]}" -importcert -keystore "$ks" "${PW[@]}" -alias "$name" -file "$dir/$name.pem"

    ts=$dir/client-truststore.jks
    "${KT[@]}" -importcert -keystore "$ts" "${SPW[@]}" -alias ca -file ca.pem
    "${KT[@]}" -importcert -keystore "$ts" "${SPW[@]}" -alias wso2carbon -file wso2carbon.pem
    "${KT[@]}" -importcert -keystore "$ts" "${SPW[@]}" -alias gateway_certificate_alias -file wso2carbon.pem
done
