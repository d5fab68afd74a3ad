#!/usr/bin/env bash
# crash-sweep.sh [SCENARIO] -- the exhaustive kill -9 sweep of issue 8 (minutes, not in CI).
#
# For generate (a new folder, and a changed topology on an existing set), rotate (--node,
# --load-balancer, --primary-cert, everything, --ca begin, --ca finish, --ca retire) and apply
# (API-M 2.6), on the 6-node, 2-load-balancer topology of tests/it/crash.rs, it kills the command
# with SIGKILL right before its 1st, 2nd, ... file replacement (APIM_PKI_TEST_KILL_AT=N, see
# src/output/fsio.rs) until the command completes without being killed. After every kill:
#   - the next run (generate, or apply again) exits 0 and leaves no temporary file or journal;
#   - `apim-pki verify` passes (for apply: a second apply is a no-op and the installed
#     keystores are the set's);
#   - every private key found before the kill (compared by public key) is still there, in
#     place or under history/ (.apim-pki-backup/ for apply);
#   - the interrupted command itself runs again successfully (a CA step that took effect is
#     refused as already done, rightly).
# SCENARIO (optional) is one of GenerateNew GenerateChange RotateNode RotateLoadBalancer
# RotatePrimaryCert RotateAll CaBegin CaFinish CaRetire Apply.
# The fast sample of the same checks runs in `cargo test --test it crash::`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CRASH_SWEEP_ONLY=${1:-}
start=$(date +%s)
cargo test --test it -- --ignored --exact crash::crash_sweep_every_replacement --nocapture 2>&1 |
    grep --line-buffered -E '^crash-sweep:|panicked|FAILED|test result|^[A-Z][A-Za-z]+, killed'
echo "crash-sweep: $(( $(date +%s) - start ))s in all"
