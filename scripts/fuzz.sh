#!/usr/bin/env bash
# Runs one fuzz target of apim-pki under libFuzzer for a set time, on the stable toolchain.
#
#   scripts/fuzz.sh TARGET SECONDS     (TARGET: topology jks pkcs12 pem xml properties site_json toml)
#   scripts/fuzz.sh all SECONDS        (each target in turn, SECONDS each)
#   FUZZ_NO_BUILD=1 scripts/fuzz.sh …  (reuse the last build)
#
# The build instruments the code with SanitizerCoverage through stable rustc flags (what
# `cargo fuzz build -s none` does, without cargo-fuzz or nightly) and links libFuzzer from the
# libfuzzer-sys crate; debug assertions and overflow checks are on. The corpus starts from
# fuzz/seeds/TARGET (committed) plus, for the XML, properties and site.json editors, WSO2's real
# files under ../shared/reference/wso2 when present; it grows in fuzz/corpus/TARGET. Crashes,
# hangs (over 10 s per input), single allocations over 256 MiB (4,000 times the largest input)
# and a resident size over 1 GiB are saved in fuzz/artifacts/TARGET.
#
# The last line is the summary, e.g.
#   fuzz topology: 1234567 executions in 600 s, 0 crashes, corpus 412 inputs, slowest input 0 s, peak RSS 39 MB
#   fuzz all: 6552392 executions in 8 targets x 600 s, 0 crashes           (after `all`)
# Exit 0 when no crash was found, 1 otherwise, 2 on usage or build errors.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
targets=(topology jks pkcs12 pem xml properties site_json toml)
usage() { echo "usage: $0 {${targets[*]}|all} SECONDS" >&2; exit 2; }
[[ $# -eq 2 && $2 =~ ^[1-9][0-9]*$ ]] || usage
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cforce-frame-pointers=yes"
# --target keeps the instrumentation out of build scripts. FUZZ_NO_BUILD=1 reuses the last build.
if [[ ${FUZZ_NO_BUILD:-} != 1 ]]; then
    (cd "$root/fuzz" && cargo build --release --quiet --target "$host") || {
        echo "fuzz $1: build failed" >&2
        exit 2
    }
fi
if [[ $1 == all ]]; then
    status=0 total=0 crashes=0
    for t in "${targets[@]}"; do
        line=$(FUZZ_NO_BUILD=1 "$0" "$t" "$2" | tail -1) || status=1
        echo "$line"
        runs=$(sed -n 's/^fuzz [a-z_]*: \([0-9]*\) executions.*/\1/p' <<<"$line")
        found=$(sed -n 's/.* \([0-9]*\) crashes.*/\1/p' <<<"$line")
        total=$((total + ${runs:-0})) crashes=$((crashes + ${found:-1}))
    done
    echo "fuzz all: $total executions in ${#targets[@]} targets x $2 s, $crashes crashes"
    exit $status
fi
target=$1
[[ " ${targets[*]} " == *" $target "* ]] || usage
seconds=$2

bin="$root/fuzz/target/$host/release/fuzz"

corpus="$root/fuzz/corpus/$target"
artifacts="$root/fuzz/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
seeds=("$root/fuzz/seeds/$target")
reference="$root/../shared/reference/wso2"
if [[ -d $reference ]]; then
    extra="$root/fuzz/corpus/$target-reference"
    mkdir -p "$extra"
    case $target in
        xml) find "$reference" -name '*.xml' -size -200k -exec cp -t "$extra" {} + 2>/dev/null || true ;;
        properties) find "$reference" -name '*.properties' -size -200k -exec cp -t "$extra" {} + 2>/dev/null || true ;;
        site_json) find "$reference" -name 'site.json' -exec sh -c 'for f; do cp "$f" "$0/$(echo "$f" | md5sum | cut -c1-12).json"; done' "$extra" {} + ;;
        toml) find "$reference" -name '*.toml' -size -200k -exec sh -c 'for f; do cp "$f" "$0/$(echo "$f" | md5sum | cut -c1-12).toml"; done' "$extra" {} + ;;
    esac
    seeds+=("$extra")
fi

log="$root/fuzz/artifacts/$target.log"
set +e
APIM_FUZZ_TARGET=$target "$bin" "$corpus" "${seeds[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=256 \
    -max_len=65536 -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
code=$?
set -e
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
elapsed=$(sed -n 's/^stat::.*//;s/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
crashes=$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' -o -name 'slow-unit-*' \) | wc -l)
size=$(find "$corpus" -type f | wc -l)
slowest=$(sed -n 's/^stat::slowest_unit_time_sec: *//p' "$log" | tail -1)
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
if [[ $code -ne 0 && $crashes -eq 0 ]]; then
    echo "fuzz $target: libFuzzer exited $code without an artifact; see $log" >&2
    tail -20 "$log" >&2
    crashes=1
fi
echo "fuzz $target: ${runs:-0} executions in ${elapsed:-$seconds} s, $crashes crashes, corpus $size inputs, slowest input ${slowest:-?} s, peak RSS ${rss:-?} MB (log fuzz/artifacts/$target.log)"
[[ $crashes -eq 0 ]]
