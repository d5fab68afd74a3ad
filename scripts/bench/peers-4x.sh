#!/usr/bin/env bash
# peers-4x.sh APIM_PKI OUTDIR -- the cost of a 4.x set with many traffic managers
# (docs/commands.md, "node.toml"): 1,000 nodes (2 control planes, 698 gateways, 300 traffic
# managers behind load balancers, ecdsa-p256, jks). Prints generate's and verify's time and
# peak memory, the set's size, a gateway's node.toml and peer-groups.toml. Run it with the
# apim-pki binary of two commits to compare them; OUTDIR is replaced.
set -euo pipefail
bin=${1:?usage: peers-4x.sh APIM_PKI OUTDIR}
out=${2:?usage: peers-4x.sh APIM_PKI OUTDIR}
topology=$(mktemp --suffix=.toml)
trap 'rm -f "$topology"' EXIT
{
  printf 'name = "big"\nproduct = "apim-4.x"\n\n[pki]\nkey = "ecdsa-p256"\n'
  printf 'validity_days = 397\nrenew_before_days = 30\n\n[keystores]\nformat = "jks"\ntls = "per-node"\n'
  node() { printf '\n[[node]]\nname = "%s"\nprofile = "%s"\nhost = "%s.big.internal"\n' "$1" "$2" "$1"; }
  for i in $(seq 0 1); do node "cp$i" control-plane; done
  for i in $(seq 0 697); do node "gw$i" gateway-worker; done
  for i in $(seq 0 299); do node "tm$i" traffic-manager; done
  for lb in cp:control-plane gw:gateway-worker tm:traffic-manager; do
    printf '\n[[load_balancer]]\nhost = "%s.big.internal"\nfronts = "%s"\n' "${lb%%:*}" "${lb#*:}"
  done
} > "$topology"
rm -rf "$out"
/usr/bin/time -f "generate: %e s elapsed, %M KB peak" nice "$bin" generate --out "$out" "$topology" > /dev/null
/usr/bin/time -f "verify: %e s elapsed, %U s CPU, %M KB peak" nice "$bin" verify "$out" | tail -1
du -sh "$out"
wc -c "$out/nodes/gw0/node.toml"
[ -f "$out/peer-groups.toml" ] && wc -c "$out/peer-groups.toml"
exit 0
