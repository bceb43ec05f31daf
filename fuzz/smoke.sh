#!/usr/bin/env bash
# CI smoke run of every fuzz target: a bounded number of inputs each (a minute or two in all, most
# of it compiling the kernels with bounds checks, once per target), seeds from fuzz/corpus
# (fuzz/corpus_dicom for the DICOM target) and tests/regressions.
# Grown corpora go to a scratch folder; crash artifacts to fuzz/artifacts/ (kept for inspection).
# Usage: fuzz/smoke.sh [runs multiplier, default 1]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mult="${1:-1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/artifacts"
export NUMBA_BOUNDSCHECK=1  # out-of-bounds in a kernel becomes an IndexError, i.e. a crash here

for spec in read_header:200000 decode:5000 decode_frames:3000 dicom_decode:3000; do
    target="${spec%%:*}"
    runs=$(( ${spec##*:} * mult ))
    seeds="$here/corpus"
    [ "$target" = dicom_decode ] && seeds="$here/corpus_dicom"
    mkdir -p "$work/$target"
    echo "fuzz smoke: $target, $runs inputs"
    if ! python "$here/fuzz_$target.py" "$work/$target" "$seeds" "$here/../tests/regressions" \
            -runs="$runs" -max_len=2048 -timeout=30 -rss_limit_mb=4000 \
            -artifact_prefix="$here/artifacts/$target-" -print_final_stats=1 > "$work/$target.log" 2>&1; then
        tail -n 60 "$work/$target.log"
        echo "fuzz smoke: $target FAILED; the input is in $here/artifacts/" >&2
        exit 1
    fi
    grep -E "^(Done|stat::(number_of_executed_units|peak_rss_mb))" "$work/$target.log"
done
