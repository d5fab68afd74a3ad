#!/usr/bin/env bash
# Rebuilds fuzz/seeds/ (committed): small valid inputs each fuzz target starts from. Keystores
# are made by apim-pki itself with the password the targets use (apim_pki::fuzzing::SEED_PASSWORD).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seeds="$root/fuzz/seeds"
bin="$root/target/debug/apim-pki"
(cd "$root" && cargo build --quiet)
rm -rf "$seeds"
mkdir -p "$seeds"/{topology,jks,pkcs12,pem,xml,properties,site_json,toml}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cp "$root"/examples/*.toml "$seeds/topology/"
for p in apim-2.6 apim-3.2 apim-4.x; do
    "$bin" init --product "$p" >"$seeds/topology/init-$p.toml"
    "$bin" init --product "$p" --ha >"$seeds/topology/init-$p-ha.toml"
done

export APIM_PRIMARY_PASSWORD=changeit APIM_TLS_PASSWORD=changeit APIM_TRUSTSTORE_PASSWORD=changeit
for format in jks pkcs12 pkcs12-legacy; do
    for product in apim-2.6 apim-4.x; do
        "$bin" init --product "$product" |
            sed -e 's/^# \[passwords\]$/[passwords]/' -e 's/^# \(primary\|tls\|truststore\) = /\1 = /' \
                -e 's/^key = "rsa-2048".*/key = "ecdsa-p256"/' -e "s/^format = .*/format = \"$format\"/" >"$tmp/t.toml"
        "$bin" generate "$tmp/t.toml" --out "$tmp/$format-$product" >/dev/null
    done
done
n=0
for f in $(find "$tmp" -name '*.jks' | sort | head -6); do cp "$f" "$seeds/jks/$((n++)).jks"; done
for f in $(find "$tmp" -name '*.p12' | sort | head -9); do cp "$f" "$seeds/pkcs12/$((n++)).p12"; done
d=$(find "$tmp" -maxdepth 1 -name 'jks-apim-2.6' | head -1)
cp "$d/ca/ca.crt" "$seeds/pem/ca.crt"
cp "$d/ca/ca.key" "$seeds/pem/ca.key"
[[ -f $d/ca/bundle.crt ]] && cp "$d/ca/bundle.crt" "$seeds/pem/bundle.crt"
for f in $(find "$tmp" -path '*load-balancers*' -type f | head -4); do cp "$f" "$seeds/pem/lb-$(basename "$f")"; done
for f in $(find "$tmp" -name node.toml | head -2) $(find "$tmp" -name deployment.toml | head -2); do
    cp "$f" "$seeds/toml/$((n++)).toml"
done
printf 'primary = "abc"\ntls = "def"\ntruststore = "ghi"\n' >"$seeds/toml/secrets.toml"

fixtures="$root/tests/fixtures/apim26"
for f in $(find "$fixtures" -name '*.xml'); do cp "$f" "$seeds/xml/$(basename "$(dirname "$f")")-$(basename "$f")"; done
for f in $(find "$fixtures" -name '*.properties'); do cp "$f" "$seeds/properties/"; done
for f in $(find "$fixtures" -name site.json); do cp "$f" "$seeds/site_json/$(basename "$(dirname "$(dirname "$(dirname "$f")")")").json"; done
du -sh "$seeds"
find "$seeds" -type f | sed "s|$seeds/||" | sort | awk -F/ '{c[$1]++} END {for (k in c) printf "%s %d\n", k, c[k]}'
